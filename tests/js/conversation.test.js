// The conversation's logic, without a browser: joining and catching up,
// the outbox (pending at once, acknowledged, refused for now or for good),
// scrollback, typing, errors and leaving.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';

import {
  Conversation, GAP_PAGE_SIZE, MAX_GAP, PAGE_SIZE, TYPING_EVERY_MS, TYPING_SHOWN_MS,
} from '../../static/js/conversation.js';
import { Clock, recorder } from './fakes.js';

const ME = 'alice@example.com';

function message(id, sender = 'bob@example.com', content = 'm' + id, ts = 1764240000 + id) {
  return { type: 'message', id, sender, content, ts };
}

class Setup {
  constructor({ maxContent = 20 } = {}) {
    this.clock = new Clock();
    this.view = recorder();
    this.frames = [];
    this.open = true;
    this.warnings = [];
    this.conversation = new Conversation({
      email: 'Alice@Example.COM',
      room: 'dev',
      send: (frame) => {
        if (!this.open) { return false; }
        this.frames.push(frame);
        return true;
      },
      view: this.view,
      timers: this.clock,
      refPrefix: 'p1.',
      maxContent,
      log: { warn: (...args) => this.warnings.push(args) },
    });
  }

  sent(type) { return this.frames.filter((frame) => frame.type === type); }

  /** Connects and joins; returns the join frame the page sent. */
  join({ participants = [ME], history = [], truncated, more, rev, changes, changesMore } = {}) {
    this.open = true;
    this.conversation.opened();
    const join = this.sent('join').at(-1);
    const joined = { type: 'joined', email: ME, room: 'dev', participants, history };
    if (truncated) { joined.truncated = true; }
    if (more) { joined.more = true; }
    if (rev !== undefined) { joined.rev = rev; }
    if (changes !== undefined) { joined.changes = changes; }
    if (changesMore) { joined.changes_more = true; }
    this.conversation.receive(joined);
    return join;
  }

  drop() {
    this.open = false;
    this.conversation.closed();
  }

  ack(frame, id) {
    this.conversation.receive({ type: 'sent', id, ts: 1764240000 + id, ref: frame.ref });
  }

  refuse(frame, code, extra = {}) {
    this.conversation.receive({ type: 'error', code, reason: code + ' reason', ref: frame.ref, ...extra });
  }
}

describe('joining', () => {
  it('joins the room as typed, and catches up with `since` when joining again', () => {
    const s = new Setup();
    const first = s.join({ history: [message(1), message(2)] });
    assert.equal(first.type, 'join');
    assert.equal(first.email, 'Alice@Example.COM');
    assert.equal(first.room, 'dev');
    assert.equal(first.since, undefined);
    assert.ok(first.ref.startsWith('p1.'));
    const [joined] = s.view.named('joined');
    assert.equal(joined[1].first, true);
    assert.equal(joined[1].me, ME);
    assert.deepEqual(joined[1].history.map((m) => m.id), [1, 2]);

    s.conversation.receive(message(3));
    s.drop();
    const again = s.join({ history: [message(3), message(4)] });
    assert.equal(again.since, 3);
    assert.notEqual(again.ref, first.ref);
    const rejoined = s.view.named('joined')[1][1];
    assert.equal(rejoined.first, false);
    // 3 was shown already: only 4 is news.
    assert.deepEqual(rejoined.history.map((m) => m.id), [4]);
  });

  it('marks the beginning of a new room, and only of a new room', () => {
    const empty = new Setup();
    empty.join();
    assert.equal(empty.view.named('beginning').length, 1);
    const busy = new Setup();
    busy.join({ history: [message(1)] });
    assert.equal(busy.view.named('beginning').length, 0);
  });

  it('starts over when the catch-up was truncated', () => {
    const s = new Setup();
    s.join({ history: [message(1), message(2)] });
    s.drop();
    const history = Array.from({ length: 3 }, (_, i) => message(1001 + i));
    s.join({ history, truncated: true });
    const joined = s.view.named('joined')[1][1];
    assert.equal(joined.truncated, true);
    assert.deepEqual([...s.conversation.shown], [1001, 1002, 1003]);
    assert.equal(s.conversation.older.complete, false);
  });

  it('ignores anything but the answers to its join until joined', () => {
    const s = new Setup();
    s.conversation.opened();
    s.conversation.receive(message(5));
    s.conversation.receive({ type: 'presence', event: 'join', email: 'x@example.com', count: 2 });
    assert.deepEqual(s.view.calls, []);
  });

  it('goes back to the join form when the server refuses the address', () => {
    const s = new Setup();
    s.conversation.opened();
    const join = s.sent('join')[0];
    s.refuse(join, 'invalid_email');
    assert.deepEqual(s.view.named('addressRefused'), [['addressRefused', 'invalid_email reason']]);
    assert.equal(s.conversation.over, true);
  });

  it('asks for a new connection when the server has it in a room already', () => {
    // Its leave of an earlier conversation did not take: only a new
    // connection is sure to be in no room.
    const s = new Setup();
    s.conversation.opened();
    s.refuse(s.sent('join')[0], 'already_joined');
    assert.deepEqual(s.view.named('reconnect'), [['reconnect']]);
    assert.equal(s.conversation.over, false);
    s.drop();
    s.join();
    assert.equal(s.conversation.joined, true);
  });

  it('joins again after a while when the server cannot take the join now', () => {
    const s = new Setup();
    s.conversation.opened();
    s.refuse(s.sent('join')[0], 'unavailable');
    assert.deepEqual(s.view.named('joinProblem'), [['joinProblem', 'unavailable reason']]);
    s.clock.advance(999);
    assert.equal(s.sent('join').length, 1);
    s.clock.advance(1);
    assert.equal(s.sent('join').length, 2);
    // Refused again: waits longer.
    s.refuse(s.sent('join')[1], 'unavailable');
    s.clock.advance(1999);
    assert.equal(s.sent('join').length, 2);
    s.clock.advance(1);
    assert.equal(s.sent('join').length, 3);
  });
});

describe('sending', () => {
  let s;
  beforeEach(() => {
    s = new Setup();
    s.join();
  });

  it('shows messages as pending at once, and sends each once the one before is acknowledged', () => {
    assert.equal(s.conversation.submit('  ok  '), null);
    assert.equal(s.conversation.submit('see you at 5'), null);
    assert.deepEqual(s.sent('message').map((f) => f.content), ['ok']);
    s.ack(s.sent('message')[0], 7);
    const sent = s.sent('message');
    assert.deepEqual(sent.map((f) => f.content), ['ok', 'see you at 5']);
    assert.notEqual(sent[0].ref, sent[1].ref);
    assert.deepEqual(s.view.named('pending').map((call) => call.slice(1)),
      [[sent[0].ref, 'ok', null], [sent[1].ref, 'see you at 5', null]]);  // no reply: null
    const [confirm] = s.view.named('confirm');
    assert.equal(confirm[1], sent[0].ref);
    assert.deepEqual(confirm[2], { id: 7, sender: ME, content: 'ok', ts: 1764240007, mine: true });
    assert.equal(s.conversation.lastId, 7);
  });

  it('never has a second message in flight, so the server cannot take a later one first', () => {
    // Sent all at once, q1 and q2 could be refused as too fast and q3 taken
    // when a token is back, before they come again (so it was, under load).
    for (const text of ['q1', 'q2', 'q3']) { s.conversation.submit(text); }
    assert.deepEqual(s.sent('message').map((f) => f.content), ['q1']);
    s.refuse(s.sent('message')[0], 'rate_limited', { retry_after: 0.2 });
    s.clock.advance(200);
    assert.deepEqual(s.sent('message').map((f) => f.content), ['q1', 'q1']);
    s.refuse(s.sent('message')[1], 'too_long');  // refused for good: the next goes
    assert.deepEqual(s.sent('message').map((f) => f.content), ['q1', 'q1', 'q2']);
    s.ack(s.sent('message')[2], 1);
    assert.deepEqual(s.sent('message').map((f) => f.content), ['q1', 'q1', 'q2', 'q3']);
  });

  it('refuses at once what the server would refuse, and sends nothing', () => {
    assert.equal(s.conversation.submit(' \n\t\u3000 '), 'empty');
    assert.equal(s.conversation.submit('x'.repeat(21)), 'too_long');
    // Characters, as the server counts them: an emoji is one.
    assert.equal(s.conversation.submit('\u{1F600}'.repeat(20)), null);
    assert.deepEqual(s.sent('message').map((f) => f.content), ['\u{1F600}'.repeat(20)]);
  });

  it('keeps what is typed offline, and sends it with the same ref after each rejoin until acknowledged', () => {
    s.drop();
    s.conversation.submit('typed offline');
    assert.equal(s.sent('message').length, 0);
    assert.equal(s.view.named('pending').length, 1);
    s.join();
    const [first] = s.sent('message');
    assert.equal(first.content, 'typed offline');
    // The ack is lost with the connection; the rejoin's history has it.
    s.drop();
    s.join({ history: [message(1, ME, 'typed offline')] });
    const again = s.sent('message')[1];
    assert.equal(again.ref, first.ref);
    s.ack(again, 1);
    assert.deepEqual(s.view.named('unpend'), [['unpend', first.ref]]);
    assert.equal(s.view.named('confirm').length, 0);
    assert.equal(s.conversation.outbox.size, 0);
  });

  it('waits when refused for now, and the ones typed after it wait too', () => {
    for (const text of ['q1', 'q2']) { s.conversation.submit(text); }
    s.ack(s.sent('message')[0], 1);
    s.refuse(s.sent('message')[1], 'rate_limited', { retry_after: 0.2 });
    s.conversation.submit('q3');  // typed during the wait: waits too
    assert.equal(s.sent('message').length, 2);
    s.clock.advance(199);
    assert.equal(s.sent('message').length, 2);
    s.clock.advance(1);
    assert.deepEqual(s.sent('message').slice(2).map((f) => f.content), ['q2']);
    s.ack(s.sent('message')[2], 2);
    assert.deepEqual(s.sent('message').slice(3).map((f) => f.content), ['q3']);
    s.ack(s.sent('message')[3], 3);
    assert.deepEqual(s.view.named('confirm').map((call) => call[2].content), ['q1', 'q2', 'q3']);
    assert.equal(s.view.named('fail').length, 0);
  });

  it('waits longer each time the server is unavailable', () => {
    s.conversation.submit('hello');
    s.refuse(s.sent('message')[0], 'unavailable');
    s.clock.advance(1000);
    assert.equal(s.sent('message').length, 2);
    s.refuse(s.sent('message')[1], 'unavailable');
    s.clock.advance(1999);
    assert.equal(s.sent('message').length, 2);
    s.clock.advance(1);
    assert.equal(s.sent('message').length, 3);
  });

  it('sends a message whose outcome is unknown again with the same ref, until its sent comes', () => {
    s.conversation.submit('did it?');
    const first = s.sent('message')[0];
    s.refuse(first, 'outcome_unknown');
    assert.equal(s.view.named('fail').length, 0);
    s.clock.advance(1000);
    const again = s.sent('message')[1];
    assert.equal(again.ref, first.ref);
    assert.equal(again.content, 'did it?');
    s.refuse(again, 'outcome_unknown');
    // Stored after all: its sent arrives; nothing goes again.
    s.ack(first, 7);
    s.clock.advance(10000);
    assert.equal(s.sent('message').length, 2);
  });

  it('marks a message refused for good as failed and forgets it', () => {
    s.conversation.submit('fine');
    s.refuse(s.sent('message')[0], 'too_long');
    assert.deepEqual(s.view.named('fail'), [['fail', s.sent('message')[0].ref, 'too_long reason']]);
    s.drop();
    s.join();
    assert.equal(s.sent('message').length, 1);  // not sent again
  });

  it('puts every confirmed message in the order of its id, and each once', () => {
    s.conversation.receive(message(1));
    s.conversation.receive(message(1));
    s.conversation.submit('mine');
    s.ack(s.sent('message')[0], 2);
    s.conversation.receive(message(2, ME, 'mine'));  // from my other tab: the same id
    assert.deepEqual(s.view.named('message').map((call) => call[1].id), [1]);
    assert.equal(s.view.named('confirm').length, 1);
  });

  it('shows errors that answer nothing it knows of, and ignores those of an earlier conversation', () => {
    s.conversation.receive({ type: 'error', code: 'internal', reason: 'oops' });
    s.conversation.receive({ type: 'error', code: 'internal', reason: 'old', ref: 'p0.m1' });
    s.conversation.receive({ type: 'error', code: 'rate_limited', reason: 'typing', retry_after: 1 });
    assert.deepEqual(s.view.named('problem'), [['problem', 'oops']]);
  });
});

describe('others', () => {
  it('keeps who is present in the order they came', () => {
    const s = new Setup();
    s.join({ participants: ['bob@example.com', ME] });
    s.conversation.receive({ type: 'presence', event: 'join', email: 'carol@example.com', count: 3 });
    s.conversation.receive({ type: 'presence', event: 'leave', email: 'bob@example.com', count: 2 });
    assert.deepEqual(s.conversation.participants, [ME, 'carol@example.com']);
    const calls = s.view.named('presence');
    assert.deepEqual(calls.map((call) => call.slice(1, 4)),
      [['join', 'carol@example.com', 3], ['leave', 'bob@example.com', 2]]);
  });

  it('takes the changes of a batched presence frame in order', () => {
    const s = new Setup();
    s.join({ participants: ['bob@example.com', ME] });
    s.conversation.receive({
      type: 'presence',
      changes: [
        { event: 'join', email: 'carol@example.com', count: 3 },
        { event: 'leave', email: 'bob@example.com', count: 2 },
        { event: 'join', email: 'dave@example.com', count: 3 },
      ],
    });
    assert.deepEqual(s.conversation.participants, [ME, 'carol@example.com', 'dave@example.com']);
    assert.deepEqual(s.view.named('presence').map((call) => call.slice(1, 4)),
      [['join', 'carol@example.com', 3], ['leave', 'bob@example.com', 2], ['join', 'dave@example.com', 3]]);
  });

  it('shows who is typing for a few seconds, and not once they send', () => {
    const s = new Setup();
    s.join();
    s.conversation.receive({ type: 'typing', email: 'bob@example.com' });
    s.conversation.receive({ type: 'typing', email: ME });  // my other tab: no news to me
    assert.deepEqual(s.view.named('typists').at(-1), ['typists', ['bob@example.com']]);
    s.clock.advance(TYPING_SHOWN_MS - 1);
    s.conversation.receive({ type: 'typing', email: 'carol@example.com' });
    assert.deepEqual(s.view.named('typists').at(-1), ['typists', ['bob@example.com', 'carol@example.com']]);
    s.clock.advance(1);
    assert.deepEqual(s.view.named('typists').at(-1), ['typists', ['carol@example.com']]);
    s.conversation.receive(message(1, 'carol@example.com'));
    assert.deepEqual(s.view.named('typists').at(-1), ['typists', []]);
  });

  it('says it is typing at most every 2.2 s, and the last keys late rather than never', () => {
    const s = new Setup();
    s.join();
    s.conversation.typed('h');
    s.conversation.typed('he');
    assert.equal(s.sent('typing').length, 1);
    s.clock.advance(TYPING_EVERY_MS);
    assert.equal(s.sent('typing').length, 2);
    s.clock.advance(TYPING_EVERY_MS);
    assert.equal(s.sent('typing').length, 2);  // nothing typed since
    s.conversation.typed('hel');  // the interval is up: at once
    assert.equal(s.sent('typing').length, 3);
    s.conversation.typed('help');
    s.conversation.typed('');  // cleared: not typing any more
    s.clock.advance(TYPING_EVERY_MS);
    s.conversation.typed('   ');
    assert.equal(s.sent('typing').length, 3);
    s.conversation.typed('x');
    s.conversation.typed('xy');
    s.conversation.submit('xy');  // sent: no `typing` after it
    s.clock.advance(TYPING_EVERY_MS);
    assert.equal(s.sent('typing').length, 4);
  });
});

function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => message(from + i));
}

describe('catching up', () => {
  // Shown: 1..3; away, 4..300 are said; the catch-up brings 251..300 and `more`.
  function away() {
    const s = new Setup();
    s.join({ history: range(1, 3) });
    s.drop();
    const again = s.join({ history: range(251, 300), more: true });
    assert.equal(again.since, 3);
    return s;
  }

  it('follows `more` page by page down to what was shown, each missed message once', () => {
    const s = away();
    const asked = [];
    while (s.sent('history').length > asked.length) {
      const page = s.sent('history').at(-1);
      assert.equal(page.limit, GAP_PAGE_SIZE);
      asked.push(page.before);
      const from = Math.max(1, page.before - GAP_PAGE_SIZE);
      s.conversation.receive({ type: 'history', before: page.before, more: from > 1,
        messages: range(from, page.before - 1) });
    }
    assert.deepEqual(asked, [251, 151, 51]);
    const missed = s.view.named('missed').flatMap((call) => call[1].map((m) => m.id));
    assert.deepEqual(missed.sort((a, b) => a - b), range(4, 250).map((m) => m.id));
    assert.equal(s.view.named('joined')[1][1].truncated, false);
    assert.equal(s.conversation.gap, null);
    assert.equal(s.conversation.shown.size, 300);
  });

  it('waits as told when a page is refused for speed, and resumes after a new connection', () => {
    const s = away();
    s.refuse(s.sent('history')[0], 'rate_limited', { retry_after: 0.5 });
    assert.equal(s.sent('history').length, 1);
    s.clock.advance(500);
    assert.equal(s.sent('history').length, 2);
    s.drop();
    // Joined again with nothing new: the gap is still to fill, from where it was.
    s.join({ history: [] });
    const asked = s.sent('history').at(-1);
    assert.equal(s.sent('history').length, 3);
    assert.equal(asked.before, 251);
  });

  it('starts over when more was missed than it would fetch', () => {
    const s = new Setup();
    s.join({ history: range(1, 3) });
    s.drop();
    const first = MAX_GAP + 10;
    s.join({ history: range(first, first + 2), more: true });
    assert.equal(s.view.named('joined')[1][1].truncated, true);
    assert.deepEqual([...s.conversation.shown], [first, first + 1, first + 2]);
    assert.equal(s.sent('history').length, 0);
  });
});

describe('scrollback', () => {
  it('asks once for the page before the oldest shown, and learns where it begins', () => {
    const s = new Setup();
    s.join({ history: [message(51), message(52)] });
    s.conversation.loadOlder(51);
    s.conversation.loadOlder(51);
    const asked = s.sent('history');
    assert.equal(asked.length, 1);
    assert.deepEqual({ before: asked[0].before, limit: asked[0].limit }, { before: 51, limit: PAGE_SIZE });
    s.conversation.receive({ type: 'history', before: 51, more: false,
      messages: [message(49), message(50), message(51)] });
    assert.deepEqual(s.view.named('older')[0][1].map((m) => m.id), [49, 50]);
    assert.equal(s.view.named('beginning').length, 1);
    s.conversation.loadOlder(49);
    assert.equal(s.sent('history').length, 1);
  });

  it('drops an answer meant for a dropped connection, and waits after a refusal', () => {
    const s = new Setup();
    s.join({ history: [message(60)] });
    s.conversation.loadOlder(60);
    s.drop();
    s.join();
    s.conversation.receive({ type: 'history', before: 60, more: true, messages: [message(59)] });
    assert.equal(s.view.named('older').length, 0);
    s.conversation.loadOlder(60);
    s.refuse(s.sent('history')[1], 'rate_limited', { retry_after: 0.5 });
    s.conversation.loadOlder(60);
    assert.equal(s.sent('history').length, 2);
    s.clock.advance(500);
    s.conversation.loadOlder(60);
    assert.equal(s.sent('history').length, 3);
  });
});

describe('leaving', () => {
  it('tells the server at once, and then neither shows nor sends anything', () => {
    const s = new Setup();
    s.join();
    s.drop();
    s.conversation.submit('never sent');
    s.open = true;
    assert.equal(s.conversation.leave(), true);
    s.conversation.opened();
    s.conversation.receive(message(9));
    assert.equal(s.conversation.submit('after'), 'over');
    assert.deepEqual(s.frames.map((f) => f.type), ['join']);
    assert.equal(s.clock.pending, 0);

    const joined = new Setup();
    joined.join();
    joined.conversation.receive({ type: 'typing', email: 'bob@example.com' });
    assert.equal(joined.conversation.leave(), true);
    assert.deepEqual(joined.frames.map((f) => f.type), ['join', 'leave']);
    assert.equal(joined.clock.pending, 0);
  });

  it('says so when its join is still on its way', () => {
    const s = new Setup();
    s.conversation.opened();
    assert.equal(s.conversation.leave(), false);
  });
});

it('warns about a frame type it does not know', () => {
  const s = new Setup();
  s.join();
  s.conversation.receive({ type: 'novelty' });
  assert.deepEqual(s.warnings, [['Chatzilla: unknown frame type', 'novelty']]);
});

describe('edits and deletes', () => {
  const changed = (id, rev, extra = {}) => ({ ...message(id, ME), type: 'changed', rev, ...extra });

  it('sends an edit with a ref, shows the answer, and ignores older news of the message', () => {
    const s = new Setup({ maxContent: 50 });
    s.join({ history: [message(1, ME)], rev: 4 });
    assert.equal(s.conversation.edit(1, '  '), 'empty');
    assert.equal(s.conversation.edit(1, ' new text '), null);
    const edit = s.sent('edit')[0];
    assert.deepEqual({ ...edit, ref: undefined }, { type: 'edit', id: 1, content: 'new text', ref: undefined });
    s.conversation.receive(changed(1, 5, { content: 'new text', edited: 2, ref: edit.ref }));
    s.conversation.receive(changed(1, 5, { content: 'new text', edited: 2 }));
    s.conversation.receive(changed(1, 3, { content: 'stale' }));
    const shown = s.view.named('changed').map((call) => [call[1].content, call[1].edited]);
    assert.deepEqual(shown, [['new text', 2]]);
    assert.equal(s.conversation.changing.size, 0);
    assert.equal(s.conversation.rev, 5);
  });

  it('catches up on changes with `rev`, and asks for the rest while there are more', () => {
    const s = new Setup();
    const first = s.join({ history: [message(1), message(2)], rev: 7 });
    assert.equal(first.rev, 0);
    s.drop();
    const again = s.join({
      history: [], rev: 12, changesMore: true,
      changes: [changed(1, 9, { content: 'edited', edited: 3 })],
    });
    assert.deepEqual([again.since, again.rev], [2, 7]);
    const asked = s.sent('changes')[0];
    assert.equal(asked.after, 9);
    assert.equal(s.conversation.rev, 7);  // not past what is still to come
    s.conversation.receive({
      type: 'changes', after: 9, more: false, rev: 12, ref: asked.ref,
      messages: [changed(2, 11, { content: '', deleted: true })],
    });
    assert.equal(s.conversation.rev, 12);
    const shown = s.view.named('changed').map((call) => [call[1].id, call[1].content, call[1].deleted]);
    assert.deepEqual(shown, [[1, 'edited', undefined], [2, '', true]]);
  });

  it('sends a change again after a rejoin, and says why one was refused', () => {
    const s = new Setup();
    s.join({ history: [message(1, ME), message(2, ME)] });
    s.conversation.remove(1);
    s.drop();
    assert.equal(s.conversation.remove(2), 'offline');
    s.join({ history: [] });
    const deletes = s.sent('delete');
    assert.deepEqual(deletes.map((frame) => frame.id), [1, 1]);
    assert.equal(deletes[0].ref, deletes[1].ref);
    s.refuse(deletes[1], 'not_yours');
    assert.deepEqual(s.view.named('unchanged')[0].slice(1), [1, 'not_yours reason']);
    assert.equal(s.conversation.changing.size, 0);
  });

  it('reacts and takes a reaction back, and shows whose reactions are ours', () => {
    const s = new Setup();
    s.join({ history: [message(1)] });
    assert.equal(s.conversation.react(1, '👍'), null);
    assert.equal(s.conversation.react(1, '🎉'), null);
    assert.equal(s.conversation.react(1, '👍', true), null);
    // The second 👍 change replaced the first, still waiting; 🎉 stays.
    assert.deepEqual([...s.conversation.changing.values()].map((f) => [f.type, f.emoji]),
      [['react', '🎉'], ['unreact', '👍']]);
    s.conversation.receive({ ...message(1), type: 'changed', rev: 1,
      reactions: [{ emoji: '🎉', count: 2, people: ['carol@example.com', ME] }] });
    const shown = s.view.named('changed')[0][1];
    assert.deepEqual(shown.reactions, [{ emoji: '🎉', people: ['carol@example.com', ME], mine: true }]);
  });
});

describe('search', () => {
  it('asks, shows what was found, and loads older messages to show one', () => {
    const s = new Setup();
    assert.equal(s.conversation.search('lunch'), 'offline');
    s.join({ history: range(50, 60) });
    assert.equal(s.conversation.search('lunch'), null);
    const asked = s.sent('search')[0];
    assert.deepEqual({ ...asked, ref: undefined }, { type: 'search', q: 'lunch', ref: undefined });
    s.conversation.receive({ type: 'search', q: 'lunch', ref: 'other', messages: [], more: false });
    assert.equal(s.view.named('found').length, 0);  // not our answer
    s.conversation.receive({ type: 'search', q: 'lunch', ref: asked.ref, more: true,
      messages: [message(55, 'bob@example.com', 'lunch?'), message(12, ME, 'lunch!')] });
    const found = s.view.named('found')[0][1];
    assert.deepEqual(found.messages.map((m) => [m.id, m.mine]), [[55, false], [12, true]]);
    assert.equal(found.more, true);
    s.conversation.reveal(55);
    assert.deepEqual(s.view.named('reveal').map((call) => call[1]), [55]);
    s.conversation.reveal(12);
    const older = s.sent('history').at(-1);
    assert.equal(older.before, 50);
    s.conversation.receive({ type: 'history', before: 50, more: true, messages: range(10, 49) });
    assert.deepEqual(s.view.named('reveal').map((call) => call[1]), [55, 12]);
    s.conversation.search('?');
    s.refuse(s.sent('search').at(-1), 'invalid_query');
    assert.deepEqual(s.view.named('searchProblem')[0].slice(1), ['invalid_query reason']);
  });
});

describe('replies', () => {
  it('sends a reply with reply_to, shows it quoted at once, and with its id once acknowledged', () => {
    const s = new Setup({ maxContent: 50 });
    s.join({ history: [message(1, 'bob@example.com', 'lunch\n  at noon?')] });
    assert.equal(s.conversation.submit('  ', { id: 1, sender: 'bob@example.com', content: 'x' }), 'empty');
    assert.equal(s.sent('message').length, 0);
    assert.equal(s.conversation.submit('yes', { id: 1, sender: 'bob@example.com', content: 'lunch\n  at noon?' }),
      null);
    const frame = s.sent('message')[0];
    assert.deepEqual(Object.keys(frame), ['type', 'content', 'reply_to', 'ref']);  // the ref last
    assert.equal(frame.reply_to, 1);
    const quote = { replyTo: 1, sender: 'bob@example.com', mine: false, excerpt: 'lunch at noon?', deleted: false };
    assert.deepEqual(s.view.named('pending')[0].slice(2), ['yes', quote]);
    s.ack(frame, 2);
    const shown = s.view.named('confirm')[0][2];
    assert.equal(shown.replyTo, 1);
    assert.deepEqual(shown.reply, { sender: 'bob@example.com', mine: false, excerpt: 'lunch at noon?', deleted: false });
    // A plain message has no reply_to.
    s.conversation.submit('plain');
    assert.deepEqual(Object.keys(s.sent('message').at(-1)), ['type', 'content', 'ref']);
  });

  it('shows others\' replies with the quote the server sent, or none when it sent none', () => {
    const s = new Setup();
    s.join({ history: [message(1, ME, 'mine')] });
    s.conversation.receive({ ...message(2), reply_to: 1, reply: { sender: ME, excerpt: 'mine' } });
    s.conversation.receive({ ...message(3), reply_to: 1, reply: { sender: ME, excerpt: '', deleted: true } });
    s.conversation.receive({ ...message(4), reply_to: 77 });
    s.conversation.receive({ ...message(2), type: 'changed', rev: 1, content: 'edited', edited: 5, reply_to: 1 });
    const shown = s.view.named('message').map((call) => [call[1].replyTo, call[1].reply]);
    assert.deepEqual(shown, [
      [1, { sender: ME, mine: true, excerpt: 'mine', deleted: false }],
      [1, { sender: ME, mine: true, excerpt: '', deleted: true }],
      [77, undefined],
    ]);
    // A live change of a reply keeps its reply_to, and says no quote (the view keeps its own).
    const changed = s.view.named('changed')[0][1];
    assert.deepEqual([changed.replyTo, changed.reply], [1, undefined]);
  });

  it('sends the same reply_to again with a message refused for now', () => {
    const s = new Setup();
    s.join({ history: [message(1)] });
    s.conversation.submit('ok', { id: 1, sender: 'bob@example.com', content: 'm1' });
    s.drop();
    s.join({ history: [] });
    const frames = s.sent('message');
    assert.deepEqual(frames.map((f) => [f.reply_to, f.ref]), [[1, frames[0].ref], [1, frames[0].ref]]);
  });
});
