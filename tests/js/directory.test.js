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

describe('a crowd: who is here, page by page', () => {
  const person = (i) => ({ id: 'p' + String(i).padStart(4, '0'), name: 'Person ' + i, avatar: '' });

  it('lists the first people and you, shows how many are here, and asks for the rest on request', () => {
    const view = recorder();
    const frames = [];
    let open = true;
    const conversation = new Conversation({
      email: null, room: 'dev', send: (frame) => { if (open) { frames.push(frame); } return open; },
      view, timers: new Clock(), refPrefix: 'p1.', maxContent: 100, directory: new Directory(),
    });
    assert.equal(conversation.morePeople(), false);  // not joined
    conversation.opened();
    const first = Array.from({ length: 100 }, (_, i) => person(i + 1));
    conversation.receive({
      type: 'joined', protocol: 2, you: ALICE, room: 'dev', participants: first, present: 250, history: [],
    });
    const joined = view.named('joined')[0][1];
    assert.equal(joined.present, 250);
    assert.equal(joined.morePeople, true);
    assert.equal(joined.participants.length, 101);
    assert.equal(joined.participants[0], 'pa1');  // you, though the first 100 did not list you

    assert.equal(conversation.morePeople(), true);
    assert.equal(conversation.morePeople(), false);  // one page at a time
    const ask = frames.at(-1);
    assert.deepEqual(Object.keys(ask).sort(), ['ref', 'type']);
    assert.equal(ask.type, 'participants');
    // Pages go by id: some of them the joined listed already.
    const page = Array.from({ length: 100 }, (_, i) => person(i + 51));
    conversation.receive({ type: 'participants', people: page, present: 250, more: true });
    const [, shown, present, more] = view.named('people').at(-1);
    assert.deepEqual([shown.length, present, more], [151, 250, true]);
    assert.equal(new Set(shown).size, shown.length);

    assert.equal(conversation.morePeople(), true);
    assert.equal(frames.at(-1).after, 'p0150');
    // Refused (flood control, say): said, and the button asks again.
    conversation.receive({ type: 'error', code: 'rate_limited', reason: 'too many', ref: frames.at(-1).ref });
    assert.deepEqual(view.named('problem').at(-1), ['problem', 'too many']);
    assert.equal(conversation.morePeople(), true);
    const rest = Array.from({ length: 100 }, (_, i) => person(i + 151));
    conversation.receive({ type: 'participants', after: 'p0150', people: rest, present: 251, more: false });
    assert.deepEqual(view.named('people').at(-1).slice(2), [251, false]);
    assert.equal(conversation.participants.length, 251);
    assert.equal(conversation.morePeople(), false);  // everyone is listed: presence keeps it so
    // An answer nobody asked for (an old connection's) changes nothing.
    conversation.receive({ type: 'participants', people: [person(999)], present: 1, more: false });
    assert.equal(conversation.participants.length, 251);
    open = false;
  });

  it('lists everyone of a small room with no more to ask for', () => {
    const view = recorder();
    const conversation = new Conversation({
      email: null, room: 'dev', send: () => true,
      view, timers: new Clock(), refPrefix: 'p1.', maxContent: 100, directory: new Directory(),
    });
    conversation.opened();
    conversation.receive({ type: 'joined', protocol: 2, you: ALICE, participants: [ALICE, BOB], present: 2, history: [] });
    const joined = view.named('joined')[0][1];
    assert.deepEqual([joined.participants, joined.present, joined.morePeople], [['pa1', 'pb2'], 2, false]);
    assert.equal(conversation.morePeople(), false);
  });
});
