// Moderation on the page, without a browser: what a `moderated` frame says
// and does to the roles, and what the page does when muted or banned.
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { Conversation } from '../../static/js/conversation.js';
import { Directory } from '../../static/js/directory.js';
import { closeWait, onError } from '../../static/js/errors.js';
import { howLong, moderationNotice } from '../../static/js/notices.js';
import { Clock, recorder } from './fakes.js';

const ALICE = { id: 'pa', name: 'Alice', avatar: '' };
const BOB = { id: 'pb', name: 'Bob', avatar: '' };

function signedIn() {
  const view = recorder();
  const frames = [];
  const conversation = new Conversation({
    email: null, room: 'dev', send: (frame) => { frames.push(frame); return true; }, view,
    timers: new Clock(), refPrefix: 'p1.', maxContent: 20, directory: new Directory(),
  });
  conversation.opened();
  return { view, frames, conversation };
}

it('tells what moderators did, in words', () => {
  const ts = 1000;
  assert.equal(moderationNotice({ action: 'mute', ts, until: ts + 600, reason: 'spam' }, 'Bob', 'Alice'),
    'Alice muted Bob for 10 min: spam');
  assert.equal(moderationNotice({ action: 'ban', ts, until: null }, 'Bob', 'Alice'), 'Alice banned Bob until lifted');
  assert.equal(moderationNotice({ action: 'grant', role: 'moderator', ts }, 'Bob', 'Alice'),
    'Alice made Bob a moderator');
  assert.equal(moderationNotice({ action: 'unban', ts }, 'Bob', 'Alice'), "Alice lifted Bob's ban");
  assert.equal(moderationNotice({ action: 'delete', ts, message: 4, reason: 'ads' }, 'Bob', 'Alice'),
    'Alice deleted a message of Bob: ads');
  assert.equal(moderationNotice({ action: 'claim', role: 'owner', ts }, 'Bob', 'Bob'), 'Bob owns this room now');
  assert.equal(moderationNotice({ action: 'invite', ts, link: 'i1', reason: 'invitation link' }, 'Bob', 'Alice'),
    "Bob came in with Alice's invitation link");
  assert.equal(moderationNotice({ action: 'invite', ts, link: 'i1' }, 'Bob', 'you'), 'Bob came in with your invitation link');
  assert.equal(howLong(0, 7200), 'for 2 h');
  assert.equal(howLong(0, 3 * 86400), 'for 3 d');
});

it('keeps the roles and shows each change', () => {
  const { view, conversation } = signedIn();
  conversation.receive({
    type: 'joined', protocol: 2, you: BOB, room: 'dev', participants: [ALICE, BOB], history: [],
    roles: { pa: 'owner' }, muted: { until: null, reason: 'spam' },
  });
  const [joined] = view.named('joined');
  assert.deepEqual(joined[1].roles, { pa: 'owner' });
  assert.deepEqual(joined[1].muted, { until: null, reason: 'spam' });
  conversation.receive({ type: 'moderated', action: 'grant', role: 'moderator', person: BOB, by: ALICE, ts: 5 });
  const [text, what] = view.named('moderated')[0].slice(1);
  assert.equal(text, 'Alice made you a moderator');
  assert.deepEqual(what.roles, { pa: 'owner', pb: 'moderator' });
  conversation.receive({ type: 'moderated', action: 'revoke', role: 'moderator', person: BOB, by: ALICE, ts: 6 });
  assert.deepEqual(conversation.roles, { pa: 'owner' });
  conversation.receive({ type: 'moderated', action: 'mute', person: BOB, by: ALICE, ts: 7, until: 67 });
  const last = view.named('moderated').at(-1);
  assert.equal(last[1], 'Alice muted you for 1 min');
  assert.equal(last[2].mine, true);
});

it('stops at a ban: the join says why, and no new attempt follows', () => {
  assert.equal(onError('banned', 'join'), 'stop');
  assert.equal(onError('muted', 'message'), 'refuse');
  assert.equal(closeWait(4403), 0);
  const { view, frames, conversation } = signedIn();
  const join = frames.at(-1);
  conversation.receive({ type: 'error', code: 'banned', reason: 'you are banned from this room until lifted: spam',
    ref: join.ref });
  assert.deepEqual(view.named('joinProblem').at(-1), ['joinProblem', 'you are banned from this room until lifted: spam']);
  assert.equal(frames.filter((frame) => frame.type === 'join').length, 1);
  // What is typed then waits as nothing: it could never be sent.
  assert.equal(conversation.submit('let me back in'), 'over');
  assert.equal(view.named('pending').length, 0);
});

it('offers moderation only above the other person', () => {
  const { frames, conversation } = signedIn();
  conversation.receive({
    type: 'joined', protocol: 2, you: BOB, room: 'dev', participants: [ALICE, BOB], history: [],
    roles: { pa: 'owner' },
  });
  assert.equal(conversation.moderates('pa'), false);
  assert.equal(conversation.moderates('pc'), false);  // a member moderates nobody
  conversation.receive({ type: 'moderated', action: 'grant', role: 'moderator', person: BOB, by: ALICE, ts: 5 });
  assert.equal(conversation.moderates('pc'), true);
  assert.equal(conversation.moderates('pa'), false);  // not the owner
  assert.equal(conversation.moderates('pb'), false);  // not oneself
  assert.equal(conversation.moderate('ban', 'pc', { reason: 'spam' }), null);
  const frame = frames.at(-1);
  assert.deepEqual({ ...frame, ref: undefined }, { type: 'ban', person: 'pc', reason: 'spam', ref: undefined });
  assert.ok(frame.ref.startsWith('p1.x'));
});

it('knows who may speak in a read-only room', () => {
  const { view, conversation } = signedIn();
  conversation.receive({
    type: 'joined', protocol: 2, you: BOB, room: 'dev', participants: [ALICE, BOB], history: [],
    roles: { pa: 'owner' }, rules: { topic: 'news', private: false, read_only: true },
  });
  assert.equal(conversation.canSpeak(), false);
  assert.equal(view.named('joined')[0][1].canSpeak, false);
  conversation.receive({ type: 'moderated', action: 'grant', role: 'moderator', person: BOB, by: ALICE, ts: 5 });
  assert.equal(view.named('moderated').at(-1)[2].canSpeak, true);
  conversation.receive({ type: 'moderated', action: 'rules', person: { id: '', name: 'someone', avatar: '' },
    by: ALICE, ts: 6, rules: { topic: '', private: true, read_only: false } });
  const [, text, what] = view.named('moderated').at(-1);
  assert.equal(text, 'Alice set the room private, open to all to speak');
  assert.deepEqual(what.rules, { topic: '', private: true, read_only: false });
});

it('reports a message, and shows moderators the reports', () => {
  const { view, frames, conversation } = signedIn();
  conversation.receive({
    type: 'joined', protocol: 2, you: ALICE, room: 'dev', participants: [ALICE, BOB], history: [],
    roles: { pa: 'owner' },
  });
  assert.equal(view.named('joined')[0][1].moderator, true);
  assert.equal(conversation.report(4, 'spam'), null);
  assert.deepEqual({ ...frames.at(-1), ref: undefined }, { type: 'report', id: 4, reason: 'spam', ref: undefined });
  conversation.receive({ type: 'reported', report: 7, message: 4, ref: frames.at(-1).ref });
  assert.deepEqual(view.named('reported').at(-1), ['reported', 4]);
  conversation.receive({ type: 'report', report: 7, message: 4, person: BOB, by: ALICE, ts: 1, reason: 'spam' });
  assert.deepEqual(view.named('report').at(-1)[1], { type: 'report', report: 7, message: 4, person: 'pb', by: 'pa', ts: 1, reason: 'spam' });
  conversation.receive({ type: 'reports', reports: [{ report: 7, message: 4, person: BOB, by: ALICE, ts: 1,
    context: [{ type: 'message', id: 4, sender: BOB, content: 'spam', ts: 1 }] }] });
  const [listed] = view.named('reports').at(-1)[1];
  assert.equal(listed.person, 'pb');
  assert.equal(listed.context[0].sender, 'pb');
  assert.equal(conversation.resolve(7), null);
  assert.equal(frames.at(-1).type, 'resolve');
});

function following(invite) {
  const view = recorder();
  const frames = [];
  const conversation = new Conversation({
    email: null, room: 'dev', send: (frame) => { frames.push(frame); return true; }, view,
    timers: new Clock(), refPrefix: 'p1.', maxContent: 20, directory: new Directory(), invite,
  });
  conversation.opened();
  return { view, frames, conversation };
}

it('joins with the invitation link it came with, until a join is answered', () => {
  const { view, frames, conversation } = following('s3cret');
  assert.equal(frames.at(-1).invite, 's3cret');
  conversation.receive({
    type: 'joined', protocol: 2, you: BOB, room: 'dev', participants: [ALICE, BOB], history: [],
    roles: { pa: 'owner' }, rules: { topic: '', private: true, read_only: false },
  });
  assert.equal(view.named('inviteUsed').length, 1);
  conversation.closed();
  conversation.opened();
  assert.equal(frames.at(-1).type, 'join');
  assert.equal(frames.at(-1).invite, undefined);  // invited for good now
});

it('stops at a link that lets nobody in, and the header is told', () => {
  const { view, frames, conversation } = following('old');
  conversation.receive({ type: 'error', code: 'invalid_invite', reason: 'this invitation link has expired: ask for a new one',
    ref: frames.at(-1).ref });
  assert.deepEqual(view.named('shut'), [['shut', 'invalid_invite']]);
  assert.equal(view.named('joinProblem').at(-1)[1], 'this invitation link has expired: ask for a new one');
  assert.equal(conversation.submit('hello?'), 'over');
  const banned = signedIn();
  banned.conversation.receive({ type: 'error', code: 'banned', reason: 'you are banned', ref: banned.frames.at(-1).ref });
  assert.deepEqual(banned.view.named('shut'), [['shut', 'banned']]);
});

it('invites by address and handles links, each answer to the invitations panel', () => {
  const { view, frames, conversation } = signedIn();
  conversation.receive({
    type: 'joined', protocol: 2, you: ALICE, room: 'dev', participants: [ALICE], history: [],
    roles: { pa: 'owner' }, rules: { topic: '', private: true, read_only: false },
  });
  assert.equal(conversation.invite('bob@example.com'), null);
  const invite = frames.at(-1);
  assert.deepEqual({ ...invite, ref: undefined }, { type: 'invite', email: 'bob@example.com', ref: undefined });
  conversation.receive({ type: 'moderated', action: 'invite', person: BOB, by: ALICE, ts: 5, ref: invite.ref });
  assert.deepEqual(view.named('invitedByAddress'), [['invitedByAddress', 'Bob']]);
  assert.equal(view.named('moderated').at(-1)[1], 'You invited Bob');
  conversation.invite('nobody@example.com');
  conversation.receive({ type: 'error', code: 'unknown_person', reason: 'nobody has signed in with this address yet',
    ref: frames.at(-1).ref });
  assert.deepEqual(view.named('invitationProblem'), [['invitationProblem', 'nobody has signed in with this address yet']]);
  assert.equal(view.named('problem').length, 0);
  conversation.makeLink();
  assert.equal(frames.at(-1).type, 'invite_link');
  conversation.receive({ type: 'invite_link', secret: 'abc', id: 'i1', by: ALICE, ts: 1, expires: 2, ref: frames.at(-1).ref });
  assert.deepEqual(view.named('linkMade'), [['linkMade', { secret: 'abc', id: 'i1', expires: 2 }]]);
  conversation.loadLinks();
  conversation.receive({ type: 'invite_links', links: [{ id: 'i1', by: ALICE, ts: 1, expires: 2 }], ref: frames.at(-1).ref });
  assert.deepEqual(view.named('links'), [['links', [{ id: 'i1', by: 'pa', ts: 1, expires: 2 }]]]);
  conversation.revokeLink('i1');
  assert.deepEqual({ ...frames.at(-1), ref: undefined }, { type: 'revoke_link', id: 'i1', ref: undefined });
  conversation.receive({ type: 'link_revoked', id: 'i1', ref: frames.at(-1).ref });
  assert.deepEqual(view.named('linkRevoked'), [['linkRevoked', 'i1']]);
});
