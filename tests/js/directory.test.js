// Protocol 2's people (directory.js) and a conversation of a signed-in page.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Conversation } from '../../static/js/conversation.js';
import { Directory } from '../../static/js/directory.js';
import { Clock, recorder } from './fakes.js';

const ALICE = { id: 'pa1', name: 'Alice', avatar: 'https://www.gravatar.com/avatar/aa?s=80&d=404' };
const BOB = { id: 'pb2', name: 'Bob', avatar: 'https://www.gravatar.com/avatar/bb?s=80&d=404' };

describe('the directory', () => {
  it('keys people by id and keeps their name and picture', () => {
    const directory = new Directory();
    assert.equal(directory.key(ALICE), 'pa1');
    assert.deepEqual(directory.person('pa1'), ALICE);
    assert.equal(directory.key('carol@example.com'), 'carol@example.com');
    assert.equal(directory.person('carol@example.com'), null);
  });

  it('turns protocol 2 frames into keys where protocol 1 has addresses', () => {
    const directory = new Directory();
    const message = { type: 'message', id: 3, sender: BOB, content: 'hi', ts: 1 };
    assert.deepEqual(directory.normalize({
      type: 'joined', protocol: 2, you: ALICE, participants: [ALICE, BOB], history: [message],
    }), {
      type: 'joined', protocol: 2, you: ALICE, email: 'pa1', participants: ['pa1', 'pb2'],
      history: [{ ...message, sender: 'pb2' }],
    });
    assert.equal(directory.normalize({ type: 'presence', event: 'join', person: BOB, count: 2 }).email, 'pb2');
    assert.equal(directory.normalize({ type: 'typing', person: BOB }).email, 'pb2');
    assert.equal(directory.normalize(message).sender, 'pb2');
    const reacted = { ...message, type: 'changed', rev: 1, reactions: [{ emoji: '👍', count: 1, people: [ALICE] }] };
    assert.deepEqual(directory.normalize(reacted).reactions, [{ emoji: '👍', count: 1, people: ['pa1'] }]);
    assert.equal(directory.normalize({ type: 'history', messages: [message], more: false }).messages[0].sender, 'pb2');
    const reply = { ...message, id: 4, reply_to: 3, reply: { sender: ALICE, excerpt: 'lunch?' } };
    assert.deepEqual(directory.normalize(reply).reply, { sender: 'pa1', excerpt: 'lunch?' });
    assert.deepEqual(directory.normalize({ ...reply, reply_to: 9, reply: undefined }).reply, undefined);
    // The changes of one moment, in one frame.
    const batch = directory.normalize({
      type: 'presence',
      changes: [{ event: 'join', person: BOB, count: 2 }, { event: 'leave', person: ALICE, count: 1 }],
    });
    assert.deepEqual(batch.changes.map((c) => [c.event, c.email, c.count]), [['join', 'pb2', 2], ['leave', 'pa1', 1]]);
    // Protocol 1 frames pass as they are.
    const v1 = { type: 'presence', event: 'join', email: 'bob@example.com', count: 2 };
    assert.equal(directory.normalize(v1), v1);
  });
});

describe('a signed-in conversation', () => {
  it('joins with no address and knows its own messages by id', () => {
    const clock = new Clock();
    const view = recorder();
    const frames = [];
    const conversation = new Conversation({
      email: null, room: 'dev', send: (frame) => { frames.push(frame); return true; },
      view, timers: clock, refPrefix: 'p1.', maxContent: 100, directory: new Directory(),
    });
    conversation.opened();
    // No address; `rev`: the page follows edits and deletes.
    assert.deepEqual(Object.keys(frames[0]).sort(), ['ref', 'rev', 'room', 'type']);
    conversation.receive({
      type: 'joined', protocol: 2, you: ALICE, room: 'dev', participants: [ALICE, BOB],
      history: [
        { type: 'message', id: 1, sender: ALICE, content: 'mine', ts: 1 },
        { type: 'message', id: 2, sender: BOB, content: 'his', ts: 2 },
      ],
    });
    const joined = view.named('joined')[0][1];
    assert.equal(joined.me, 'pa1');
    assert.deepEqual(joined.participants, ['pa1', 'pb2']);
    assert.deepEqual(joined.history.map((m) => [m.sender, m.mine]), [['pa1', true], ['pb2', false]]);
    conversation.receive({ type: 'typing', person: BOB });
    assert.deepEqual(view.named('typists').at(-1)[1], ['pb2']);
  });
});
