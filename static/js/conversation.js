// One conversation: what the page knows of a room from the join to the
// leave, and what it says over the connection. No DOM: everything to show
// goes to `view` (see ConversationView for the methods it calls), and every
// frame to `send`. The page makes a new Conversation for each join and
// drops it on leaving, so nothing of one conversation outlives it.
//
// Speaks wire protocol version 1 with its extensions (rooms, `since`,
// `history`, refs, `typing`, `leave`, edits and deletes with `rev`, replies;
// docs/protocol.md). A new frame type
// is one more entry in HANDLERS; a new error code one more row in errors.js.

import { onError, retryAfter } from './errors.js';
import { moderationNotice } from './notices.js';
import { Outbox } from './outbox.js';
import { checkMessage, quoteOf } from './rules.js';

export const PAGE_SIZE = 50;        // messages per scrollback request
// A catch-up that says `more` is followed with history pages this large,
// as long as the gap is at most MAX_GAP messages; past that the page
// starts over from the newest, and scrolling up loads the rest.
export const GAP_PAGE_SIZE = 100;
export const MAX_GAP = 5000;
// At most one `typing` this often: a little over the server's 2 s
// throttle, so network jitter does not get one dropped.
export const TYPING_EVERY_MS = 2200;
export const TYPING_SHOWN_MS = 5000;
// Showing a search result loads at most this many pages of older messages.
export const REVEAL_PAGES = 20; // "… is typing" lasts this long after the last one

/**
 * `email` is the address to join as (null when signed in: protocol 2,
 * whose people `directory` keeps), `room` the room's name; `send(frame)`
 * puts a frame on the connection (false when it is not open); `view`
 * shows what happens; `timers` is {setTimeout, clearTimeout, now};
 * `refPrefix` starts every ref (unique per page load and conversation);
 * `maxContent` is the
 * server's longest message, in characters; `invite` an invitation link's
 * secret that came with the page (sent with the join until one is answered).
 */
export class Conversation {
  constructor({ email, room, send, view, timers, refPrefix, maxContent, log = console, directory = null, invite = null }) {
    this.email = email;
    this._invite = invite;
    this._inviteRefs = new Set();  // invitation frames on their way (invite by address, links)
    this.room = room;
    this.me = null;            // the address as the server keeps it, from `joined`
    this.joined = false;
    this.everJoined = false;   // once true, every (re)join asks for what it missed
    this.over = false;         // left: nothing more is shown or sent
    // Ids of the messages shown. Ids are per room, durable and never
    // reused, so an id alone says whether a message is shown already.
    this.shown = new Set();
    this.lastId = 0;           // the newest id shown; a rejoin asks for what came after it
    // Changes (edits, deletes): the room's change id up to which every
    // change is known (a rejoin asks for the later ones), and the change
    // id of each shown message that was changed (older news is ignored).
    this.rev = 0;
    this.revs = new Map();
    // The page's own edits and deletes on their way: ref -> frame (sent
    // again, with the same ref, after a rejoin; harmless if it was done).
    this.changing = new Map();
    this._changesRef = null;   // the `changes` request in flight
    this._searchRef = null;    // the `search` whose answer is awaited
    this._revealing = null;    // {id, pages}: a message to show once loaded
    this.participants = [];
    // How many are present (protocol 2 lists the first 100 in `joined`);
    // the pages of the rest: the last id listed, whether more follow, and
    // the request in flight.
    this.present = 0;
    this._peopleAfter = null;
    this._peopleMore = false;
    this._peopleRef = null;
    // Protocol 2: the room's roles, key -> "admin", "owner" or "moderator".
    this.roles = {};
    this._send = send;
    this._view = view;
    this._timers = timers;
    this._maxContent = maxContent;
    this._log = log;
    // Protocol 2's people, as keys (directory.js); null under protocol 1.
    this._directory = directory;
    this._refPrefix = refPrefix;
    this._refs = 0;
    this._joinRef = null;
    this._since = null;        // the `since` of the join on its way, or null
    this._joining = false;     // a join is on its way, not answered yet
    this._joinTries = 0;
    this._joinTimer = null;
    this.outbox = new Outbox({ send, timers, prefix: refPrefix + 'm' });
    // Scrollback: the request in flight ({ref, before}); whether the server
    // said there is nothing older; whether it refused to say.
    this.older = { loading: null, complete: false, stopped: false };
    this._olderTimer = null;
    // Catching up: the messages missed, older than the catch-up's history
    // ({since, before, ref, loading}), fetched page by page; null when none.
    this.gap = null;
    this._gapTimer = null;
    this._draft = '';
    this._lastTyping = -Infinity;
    this._typingTimer = null;  // a `typing` due when the interval is up
    this._typists = new Map(); // email -> the timer that forgets it
  }

  _ref(kind) {
    this._refs += 1;
    return this._refPrefix + kind + this._refs;
  }

  // -- the connection -------------------------------------------------------

  /** The connection is open: join (again). */
  opened() {
    if (this.over) { return; }
    this._cancelJoinRetry();
    this._joinRef = this._ref('j');
    // Signed in (protocol 2), the cookie says who joins: no address.
    const frame = this.email === null
      ? { type: 'join', room: this.room, ref: this._joinRef }
      : { type: 'join', email: this.email, room: this.room, ref: this._joinRef };
    if (this._invite !== null && this.email === null) { frame.invite = this._invite; }
    this._since = this.everJoined ? this.lastId : null;
    if (this._since !== null) { frame.since = this._since; }
    frame.rev = this.rev;
    this._joining = this._send(frame);
  }

  /** The connection is gone; what waits goes again after the rejoin. */
  closed() {
    this.joined = false;
    this._joining = false;
    this.outbox.close();
    this._cancelJoinRetry();
    this.older.loading = null;  // its answer died with the connection
    this._peopleRef = null;
    if (this._olderTimer !== null) { this._timers.clearTimeout(this._olderTimer); }
    this._olderTimer = null;
    // A gap being filled is older than what the rejoin asks for (`since`
    // is the newest shown): it is kept, and resumed once joined again.
    this._cancelGapRetry();
    if (this.gap !== null) { this.gap.loading = null; }
    this._stopTypingTimer();
    this._clearTypists();
  }

  /** A frame from the server. */
  receive(frame) {
    if (this.over) { return; }
    if (this._directory !== null) { frame = this._directory.normalize(frame); }
    const handle = HANDLERS[frame.type];
    if (handle === undefined) {
      this._log.warn('Chatzilla: unknown frame type', frame.type);
      return;
    }
    // Until `joined`, nothing but the answers to the join concerns this
    // conversation (a previous one's frames may still be on their way).
    if (!this.joined && frame.type !== 'joined' && frame.type !== 'error') { return; }
    handle.call(this, frame);
  }

  // -- what the user does ---------------------------------------------------

  /**
   * Send `text` as a message (a reply to `replyTo`, {id, sender, content},
   * the message it answers, when not null): null when it is on its way
   * (shown as pending at once), else what the server would refuse it for
   * ('empty' or 'too_long'), and nothing is sent.
   */
  submit(text, replyTo = null) {
    // Banned, or not invited: nothing would ever be sent, so nothing waits as "sending…".
    if (this.over || this._shut) { return 'over'; }
    const checked = checkMessage(text, this._maxContent);
    if (checked.problem) { return checked.problem; }
    this._stopTypingTimer();  // what was being typed is sent now
    this._draft = '';
    // Shown as the server will quote it, until its own quote comes.
    const reply = replyTo === null ? null : {
      replyTo: replyTo.id, sender: replyTo.sender, mine: replyTo.sender === this.me,
      excerpt: quoteOf(replyTo.content), deleted: false,
    };
    const ref = this.outbox.add(checked.content, reply === null ? null : { reply_to: replyTo.id }, reply);
    this._view.pending(ref, checked.content, reply);
    return null;
  }

  /**
   * A key was typed and the composer holds `text`: the room hears that
   * someone is typing, at most every TYPING_EVERY_MS; keys typed sooner
   * are told when that time is up, if there is still text.
   */
  typed(text) {
    this._draft = text;
    if (!this.joined || this.over) { return; }
    if (!text.trim()) {
      this._stopTypingTimer();
      return;
    }
    const wait = this._lastTyping + TYPING_EVERY_MS - this._timers.now();
    if (wait > 0) {
      if (this._typingTimer === null) {
        this._typingTimer = this._timers.setTimeout(() => {
          this._typingTimer = null;
          this.typed(this._draft);
        }, wait);
      }
      return;
    }
    this._lastTyping = this._timers.now();
    this._send({ type: 'typing' });
  }

  /**
   * Edit our message `id` to `text`: null when on its way, else what the
   * server would refuse it for ('empty', 'too_long', 'offline').
   */
  edit(id, text) {
    const checked = checkMessage(text, this._maxContent);
    if (checked.problem) { return checked.problem; }
    return this._change({ type: 'edit', id, content: checked.content });
  }

  /** Whether this person moderates here (a moderator, the owner or an admin). */
  canModerate() {
    return (RANK[this.roles[this.me]] || 0) >= RANK.moderator;
  }

  /** Report message `id` to the moderators: null when on its way, else 'offline'. */
  report(id, reason) {
    if (this.over || !this.joined) { return 'offline'; }
    const frame = { type: 'report', id, ref: this._ref('x') };
    if (reason) { frame.reason = reason; }
    this._send(frame);
    return null;
  }

  /** Ask for the room's open reports (moderators). */
  loadReports() {
    if (this.over || !this.joined) { return 'offline'; }
    this._send({ type: 'reports', ref: this._ref('x') });
    return null;
  }

  /** Set the room's rules (its owner, admins): null when on its way, else 'offline'. */
  setRules(rules) {
    if (this.over || !this.joined) { return 'offline'; }
    this._send({ type: 'rules', ...rules, ref: this._ref('x') });
    return null;
  }

  /** Invite someone by the address they signed in with (moderators): null when on its way, else 'offline'. */
  invite(email) { return this._invitation({ type: 'invite', email }); }

  /** Make an invitation link (moderators of a private room); its answer goes to the view. */
  makeLink() { return this._invitation({ type: 'invite_link' }); }

  /** Ask for the room's invitation links (moderators). */
  loadLinks() { return this._invitation({ type: 'invite_links' }); }

  /** Revoke invitation link `id` (moderators). */
  revokeLink(id) { return this._invitation({ type: 'revoke_link', id }); }

  _invitation(frame) {
    if (this.over || !this.joined) { return 'offline'; }
    const ref = this._ref('i');
    this._inviteRefs.add(ref);
    this._send({ ...frame, ref });
    return null;
  }

  /** Close report `report` (moderators). */
  resolve(report) {
    if (this.over || !this.joined) { return 'offline'; }
    this._send({ type: 'resolve', report, ref: this._ref('x') });
    return null;
  }

  /** Whether this person may speak here: not in a read-only room, unless one of its moderators. */
  canSpeak() {
    return !(this.rules && this.rules.read_only) || (RANK[this.roles[this.me]] || 0) >= RANK.moderator;
  }

  /**
   * Whether this person may moderate `key` here (mute, ban, delete their
   * messages): a moderator, owner or admin above them (docs/protocol.md).
   */
  moderates(key) {
    const mine = RANK[this.roles[this.me]] || 0;
    return key !== this.me && mine >= RANK.moderator && mine > (RANK[this.roles[key]] || 0);
  }

  /**
   * Send a moderation frame (`kind`: mute, ban...) about person `key`, with
   * `fields` (minutes, reason): null when on its way, else 'offline'. Its
   * answer is the room's `moderated` frame, or an error the page shows.
   */
  moderate(kind, key, fields = {}) {
    if (this.over || !this.joined) { return 'offline'; }
    this._send({ type: kind, person: key, ...fields, ref: this._ref('x') });
    return null;
  }

  /** Delete our message `id`: null when on its way, else 'offline'. */
  remove(id) {
    return this._change({ type: 'delete', id });
  }

  /** Add our reaction `emoji` to message `id` (or take it back: `undo`); null, or 'offline'. */
  react(id, emoji, undo = false) {
    return this._change({ type: undo ? 'unreact' : 'react', id, emoji });
  }

  _change(frame) {
    if (this.over || !this.joined) { return 'offline'; }
    // One change of a kind of a message at a time (its text; one emoji):
    // a newer one replaces the older if it still waits, so a retry never
    // undoes a later one.
    const kind = (f) => (f.emoji === undefined ? 'text' : 'emoji ' + f.emoji);
    for (const [ref, waiting] of this.changing) {
      if (waiting.id === frame.id && kind(waiting) === kind(frame)) { this.changing.delete(ref); }
    }
    const ref = this._ref('c');
    this.changing.set(ref, { ...frame, ref });
    this._send({ ...frame, ref });
    return null;
  }

  /**
   * Search the room for `q` (older than message `before`, or from the
   * newest): null when on its way (the view hears `found`), else 'offline'.
   */
  search(q, before = null) {
    if (this.over || !this.joined) { return 'offline'; }
    this._searchRef = this._ref('s');
    const frame = { type: 'search', q, ref: this._searchRef };
    if (before !== null) { frame.before = before; }
    this._send(frame);
    return null;
  }

  /**
   * Show message `id` in the conversation: at once if it is shown, else
   * after loading older messages until it is (at most REVEAL_PAGES pages).
   */
  reveal(id) {
    if (this.shown.has(id)) {
      this._revealing = null;
      this._view.reveal(id);
      return;
    }
    this._revealing = { id, pages: 0 };
    this._revealOlder();
  }

  _revealOlder() {
    const wanted = this._revealing;
    if (this.older.complete || wanted.pages >= REVEAL_PAGES || this.shown.size === 0) {
      this._revealing = null;
      this._view.problem('That message is no longer in the conversation.');
      return;
    }
    wanted.pages += 1;
    this.loadOlder(Math.min(...this.shown));
  }

  _onSearch(frame) {
    if (frame.ref === undefined || frame.ref !== this._searchRef) { return; }
    this._searchRef = null;
    this._view.found({
      q: frame.q,
      before: frame.before === undefined ? null : frame.before,
      messages: frame.messages.map((message) => this._shown(message)),
      more: Boolean(frame.more),
    });
  }

  /** Asks for the messages before id `before` (the oldest shown), unless in flight or none are left. */
  loadOlder(before) {
    const older = this.older;
    if (!this.joined || this.over || older.loading !== null || older.complete || older.stopped) { return; }
    if (before === null || this._olderTimer !== null) { return; }
    this.older.loading = { ref: this._ref('h'), before };
    this._send({ type: 'history', before, limit: PAGE_SIZE, ref: this.older.loading.ref });
  }

  /**
   * The user leaves: the room hears it at once, and this conversation is
   * over. Returns false when a join is still on its way: only a new
   * connection is then sure to be in no room.
   */
  leave() {
    if (this.over) { return true; }
    const clean = !this._joining;
    if (this.joined) { this._send({ type: 'leave' }); }
    this.closed();
    this.outbox.dispose();
    this.over = true;
    return clean;
  }

  // -- frames from the server -----------------------------------------------

  _onJoined(frame) {
    const first = !this.everJoined;
    this.joined = true;
    this._joining = false;
    this.everJoined = true;
    this._joinTries = 0;
    this.me = frame.email;
    this.participants = frame.participants.slice();
    // A crowd's joined lists its first people: you among them or not.
    if (!this.participants.includes(this.me)) { this.participants.unshift(this.me); }
    this.present = typeof frame.present === 'number' ? frame.present : this.participants.length;
    this._peopleAfter = null;
    this._peopleRef = null;
    this._peopleMore = this.present > this.participants.length;
    this.roles = { ...(frame.roles || {}) };
    this.rules = frame.rules || null;
    if (this._invite !== null) {
      this._invite = null;  // used, or not needed: invited (or public) now
      this._view.inviteUsed();
    }
    const startOver = this._catchUpGap(frame);
    if (startOver) {
      // Not every missed message can be fetched (too many, or some are
      // gone for good): what is shown now ends where the gap begins. Start
      // over from the newest messages; scrolling up loads the rest, in order.
      this.shown.clear();
      this.older.complete = false;
    }
    const history = frame.history.filter((message) => this._showing(message));
    this._view.joined({
      me: this.me,
      participants: this.participants,
      present: this.present,
      morePeople: this._peopleMore,
      first,
      truncated: startOver,
      history: history.map((message) => this._shown(message)),
      roles: this.roles,
      muted: frame.muted || null,
      rules: this.rules,
      canSpeak: this.canSpeak(),
      moderator: this.canModerate(),
      owner: (RANK[this.roles[this.me]] || 0) >= RANK.owner,
    });
    // No `since`: the history is the room's latest; none means a new room.
    if (first && frame.history.length === 0) { this._reachedBeginning(Boolean(frame.truncated)); }
    for (const message of frame.history) { this._knowRev(message); }
    this._applyChanges(frame.changes || [], frame.changes_more, frame.rev);
    this.outbox.open();
    // What was being changed when the connection dropped goes again.
    for (const waiting of this.changing.values()) { this._send(waiting); }
    this._fillGap();
  }

  // The messages changed while away (`joined.changes`, a `changes` page):
  // shown as they are now; `more`: ask for the rest, after the last one.
  _applyChanges(changes, more, rev) {
    for (const frame of changes) { this._onChanged(frame, false); }
    if (more && changes.length > 0) {
      this._changesRef = this._ref('r');
      this._send({ type: 'changes', after: changes[changes.length - 1].rev, ref: this._changesRef });
      return;
    }
    this._changesRef = null;
    if (typeof rev === 'number') { this.rev = Math.max(this.rev, rev); }
  }

  _onChanges(frame) {
    if (frame.ref === undefined || frame.ref !== this._changesRef) { return; }
    this._applyChanges(frame.messages, frame.more, frame.rev);
  }

  // A message's new state (`changed`): shown if the message is, unless
  // what is shown is as new. `live`: the room's news, in change order.
  _onChanged(frame, live = true) {
    // The answer to our own change (its live news comes too): done, and
    // shown even when it changed nothing (a retry), which ends "saving…".
    const answer = frame.ref !== undefined && this.changing.delete(frame.ref);
    if (frame.ref === undefined && live && this._changesRef === null) {
      this.rev = Math.max(this.rev, frame.rev);
    }
    if (!this.shown.has(frame.id)) { return; }
    const known = this.revs.get(frame.id) || 0;
    if (known < frame.rev) { this.revs.set(frame.id, frame.rev); }
    if (known < frame.rev || (answer && known === frame.rev)) { this._view.changed(this._shown(frame)); }
  }

  // Remembers the change id of a message shown as it was then.
  _knowRev(message) {
    if (message.rev && (this.revs.get(message.id) || 0) < message.rev) {
      this.revs.set(message.id, message.rev);
    }
  }

  // A catch-up that says `more` left out older missed messages: they
  // become the gap, fetched page by page after the join. Returns whether
  // to start over instead (the gap is too large, the server says some
  // missed messages are gone, or a gap is still unfilled from before).
  _catchUpGap(frame) {
    if (this._since === null) { return false; }  // a first join asked for no particular message
    if (frame.truncated) {
      this.gap = null;
      return true;
    }
    if (!frame.more || frame.history.length === 0) { return false; }
    const before = frame.history[0].id;
    if (this.gap !== null || before - this._since - 1 > MAX_GAP) {
      this.gap = null;
      return true;
    }
    this.gap = { since: this._since, before, ref: null, loading: null };
    return false;
  }

  /** Asks for the next page of the gap, unless one is on its way. */
  _fillGap() {
    const gap = this.gap;
    if (gap === null || gap.loading !== null || !this.joined || this.over || this._gapTimer !== null) {
      return;
    }
    gap.ref = this._ref('g');
    gap.loading = gap.before;
    this._send({ type: 'history', before: gap.before, limit: GAP_PAGE_SIZE, ref: gap.ref });
  }

  _onGapPage(frame) {
    const gap = this.gap;
    gap.loading = null;
    for (const message of frame.messages) { this._knowRev(message); }
    const missed = frame.messages.filter((message) => message.id > gap.since);
    const news = missed.filter((message) => this._showing(message));
    if (news.length > 0) { this._view.missed(news.map((message) => this._shown(message))); }
    if (!frame.more || missed.length === 0 || missed.length < frame.messages.length ||
        missed[0].id <= gap.since + 1) {
      this.gap = null;  // reached what was shown before
      return;
    }
    gap.before = missed[0].id;
    this._fillGap();
  }

  _gapError(frame) {
    this.gap.loading = null;
    if (onError(frame.code, 'history') !== 'retry') {
      // Not to be had: scrolling up still loads what is older than shown.
      this.gap = null;
      return;
    }
    this._gapTimer = this._timers.setTimeout(() => {
      this._gapTimer = null;
      this._fillGap();
    }, retryAfter(frame) * 1000);
  }

  _cancelGapRetry() {
    if (this._gapTimer !== null) { this._timers.clearTimeout(this._gapTimer); }
    this._gapTimer = null;
  }

  /**
   * Ask for the next page of who is here (protocol 2, once `joined` said
   * more are present than it listed). False when there is nothing to ask
   * (or a page is on its way, or not joined).
   */
  morePeople() {
    if (!this.joined || !this._peopleMore || this._peopleRef !== null) { return false; }
    this._peopleRef = this._ref('w');
    const frame = { type: 'participants', ref: this._peopleRef };
    if (this._peopleAfter !== null) { frame.after = this._peopleAfter; }
    if (!this._send(frame)) { this._peopleRef = null; }
    return this._peopleRef !== null;
  }

  _onParticipants(frame) {
    if (this._peopleRef === null || !Array.isArray(frame.people)) { return; }
    this._peopleRef = null;
    frame.people.forEach((key) => { if (!this.participants.includes(key)) { this.participants.push(key); } });
    if (frame.people.length > 0) { this._peopleAfter = frame.people.at(-1); }
    this._peopleMore = Boolean(frame.more);
    if (typeof frame.present === 'number') { this.present = frame.present; }
    this._view.people(this.participants, this.present, this._peopleMore);
  }

  _onPresence(frame) {
    // Version 2 sends the arrivals and departures of one moment in one
    // frame, in order (docs/protocol.md); each is a presence frame's fields.
    if (Array.isArray(frame.changes)) {
      frame.changes.forEach((change) => { if (change && typeof change === 'object') { this._onPresence(change); } });
      return;
    }
    const at = this.participants.indexOf(frame.email);
    if (frame.event === 'join' && at < 0) { this.participants.push(frame.email); }
    if (frame.event === 'leave' && at >= 0) { this.participants.splice(at, 1); }
    if (frame.event === 'leave') { this._stopTyping(frame.email); }
    this._view.presence(frame.event, frame.email, frame.count, this.participants);
  }

  _onMessage(frame) {
    this._stopTyping(frame.sender);
    this._knowRev(frame);
    if (this._showing(frame)) { this._view.message(this._shown(frame)); }
  }

  _onSent(frame) {
    const entry = this.outbox.acknowledged(frame.ref);
    if (entry === undefined) { return; }
    const message = { id: frame.id, sender: this.me, content: entry.content, ts: frame.ts };
    if (entry.note !== null) {
      message.reply_to = entry.note.replyTo;
      message.reply = entry.note;
    }
    if (this._showing(message)) {
      this._view.confirm(frame.ref, this._shown(message));
    } else {
      // A rejoin's history had it already: only its ack had been lost.
      this._view.unpend(frame.ref);
    }
  }

  _onHistory(frame) {
    if (this.gap !== null && this.gap.loading !== null && frame.before === this.gap.loading) {
      return this._onGapPage(frame);
    }
    const asked = this.older.loading;
    // An answer to a request of a dropped connection, or to none.
    if (asked === null || frame.before !== asked.before) { return; }
    this.older.loading = null;
    // Known before the view looks for more to fill itself with.
    if (!frame.more) { this.older.complete = true; }
    for (const message of frame.messages) { this._knowRev(message); }
    const messages = frame.messages.filter((message) => this._showing(message));
    this._view.older(messages.map((message) => this._shown(message)));
    if (!frame.more) { this._reachedBeginning(Boolean(frame.truncated)); }
    if (this._revealing !== null) { this.reveal(this._revealing.id); }
  }

  _onTyping(frame) {
    if (frame.email === this.me) { return; }
    const timer = this._typists.get(frame.email);
    if (timer !== undefined) { this._timers.clearTimeout(timer); }
    this._typists.set(frame.email, this._timers.setTimeout(() => this._stopTyping(frame.email),
      TYPING_SHOWN_MS));
    this._view.typists(Array.from(this._typists.keys()));
  }

  _onModerated(frame) {
    if (frame.action === 'grant' || frame.action === 'claim') { this.roles[frame.person] = frame.role; }
    if (frame.action === 'revoke') { delete this.roles[frame.person]; }
    if (frame.action === 'rules') { this.rules = frame.rules || null; }
    const name = (key) => (key === this.me ? 'you' : this._directory ? this._directory.name(key) : key);
    const text = moderationNotice(frame, name(frame.person), name(frame.by));
    if (this._inviteRefs.delete(frame.ref)) { this._view.invitedByAddress(name(frame.person)); }
    this._view.moderated(text.charAt(0).toUpperCase() + text.slice(1), {
      roles: this.roles,
      action: frame.action,
      mine: frame.person === this.me,
      rules: this.rules,
      canSpeak: this.canSpeak(),
      moderator: this.canModerate(),
      owner: (RANK[this.roles[this.me]] || 0) >= RANK.owner,
    });
  }

  _onReported(frame) { this._view.reported(frame.message); }

  _onInviteLink(frame) {
    this._inviteRefs.delete(frame.ref);
    this._view.linkMade({ secret: frame.secret, id: frame.id, expires: frame.expires });
  }

  _onInviteLinks(frame) {
    this._inviteRefs.delete(frame.ref);
    const key = (who) => (this._directory && who && typeof who === 'object' ? this._directory.key(who) : who);
    this._view.links((frame.links || []).map((link) => ({ ...link, by: key(link.by) })));
  }

  _onLinkRevoked(frame) {
    this._inviteRefs.delete(frame.ref);
    this._view.linkRevoked(frame.id);
  }

  _onReport(frame) {
    const f = this._directory ? { ...frame, person: this._directory.key(frame.person), by: this._directory.key(frame.by) } : frame;
    this._view.report(f);
  }

  _onReports(frame) {
    const key = (who) => (this._directory && who && typeof who === 'object' ? this._directory.key(who) : who);
    this._view.reports((frame.reports || []).map((report) => ({
      ...report,
      person: key(report.person),
      by: key(report.by),
      context: (report.context || []).map((m) => ({ ...m, sender: key(m.sender) })),
    })));
  }

  _onError(frame) {
    const ref = frame.ref;
    // An answer to an earlier conversation's frame.
    if (typeof ref === 'string' && !ref.startsWith(this._refPrefix)) { return; }
    if (ref !== undefined && ref === this._joinRef) { return this._joinError(frame); }
    if (ref !== undefined && this.outbox.has(ref)) { return this._messageError(frame); }
    if (ref !== undefined && this.older.loading !== null && ref === this.older.loading.ref) {
      return this._historyError(frame);
    }
    if (ref !== undefined && this.gap !== null && ref === this.gap.ref) { return this._gapError(frame); }
    if (ref !== undefined && this.changing.has(ref)) { return this._changeError(frame); }
    if (ref !== undefined && ref === this._searchRef) {
      this._searchRef = null;
      return this._view.searchProblem(frame.reason);
    }
    if (ref !== undefined && ref === this._peopleRef) {
      this._peopleRef = null;  // the button asks again
      return this._view.problem(frame.reason);
    }
    if (ref !== undefined && this._inviteRefs.delete(ref)) { return this._view.invitationProblem(frame.reason); }
    if (ref !== undefined && ref === this._changesRef) {
      // Not to be had now: the next rejoin asks again from the same `rev`.
      this._changesRef = null;
      return;
    }
    const action = onError(frame.code, 'other');
    if (action === 'show') { this._view.problem(frame.reason); }
  }

  _joinError(frame) {
    this._joining = false;
    const action = onError(frame.code, 'join');
    if (action === 'address') {
      this.over = true;
      this.outbox.dispose();
      this._view.addressRefused(frame.reason);
    } else if (action === 'retry') {
      this._joinTries += 1;
      this._view.joinProblem(frame.reason);
      this._cancelJoinRetry();
      this._joinTimer = this._timers.setTimeout(() => {
        this._joinTimer = null;
        this.opened();
      }, retryAfter(frame, this._joinTries) * 1000);
    } else if (action === 'stop') {
      if (SHUT_OUT.includes(frame.code)) {
        this._shut = true;
        this._view.shut(frame.code);
      }
      this._view.joinProblem(frame.reason);
    } else if (action === 'reconnect') {
      this._view.reconnect();
    }
  }

  _messageError(frame) {
    const action = onError(frame.code, 'message');
    if (action === 'retry') {
        this.outbox.later(frame.ref, retryAfter(frame, this.outbox.tries(frame.ref) + 1));
    } else if (action === 'refuse') {
      this.outbox.refused(frame.ref);
      this._view.fail(frame.ref, frame.reason);
    }
  }

  _changeError(frame) {
    const waiting = this.changing.get(frame.ref);
    if (onError(frame.code, 'message') === 'retry') {
      const wait = retryAfter(frame) * 1000;
      this._timers.setTimeout(() => {
        if (this.changing.get(frame.ref) === waiting && this.joined) { this._send(waiting); }
      }, wait);
      return;
    }
    this.changing.delete(frame.ref);
    this._view.unchanged(waiting.id, frame.reason);
  }

  _historyError(frame) {
    this.older.loading = null;
    const action = onError(frame.code, 'history');
    if (action === 'retry') {
      // Scrolling to the top asks again, but not before this.
      this._olderTimer = this._timers.setTimeout(() => { this._olderTimer = null; },
        retryAfter(frame) * 1000);
    } else if (action === 'stop') {
      this.older.stopped = true;
    }
  }

  // -- helpers ----------------------------------------------------------------

  // Whether `message` is news (not shown yet); marks it shown.
  _showing(message) {
    if (this.shown.has(message.id)) { return false; }
    this.shown.add(message.id);
    this.lastId = Math.max(this.lastId, message.id);
    return true;
  }

  // A message as the view shows it: with `mine`, and `edited` (a time) or
  // `deleted` when it was changed.
  _shown(message) {
    const shown = { id: message.id, sender: message.sender, content: message.content, ts: message.ts,
      mine: message.sender === this.me };
    if (message.edited !== undefined) { shown.edited = message.edited; }
    if (message.deleted) { shown.deleted = true; }
    if (message.reactions && message.reactions.length > 0) {
      shown.reactions = message.reactions.map((r) => ({
        emoji: r.emoji, people: r.people, mine: r.people.includes(this.me),
      }));
    }
    // A reply: the id of the message it answers, and what it quotes of it
    // when the frame says (a live change of the reply does not: the quote
    // shown stays); none when that message is no longer kept.
    if (typeof message.reply_to === 'number') {
      shown.replyTo = message.reply_to;
      if (message.reply && typeof message.reply === 'object') {
        shown.reply = { sender: message.reply.sender, mine: message.reply.sender === this.me,
          excerpt: String(message.reply.excerpt || ''), deleted: Boolean(message.reply.deleted) };
      }
    }
    return shown;
  }

  // Nothing older is left; `removed`: the server removed older messages
  // (its retention), so this is not where the conversation began.
  _reachedBeginning(removed = false) {
    this.older.complete = true;
    this._view.beginning(removed);
  }

  _cancelJoinRetry() {
    if (this._joinTimer !== null) { this._timers.clearTimeout(this._joinTimer); }
    this._joinTimer = null;
  }

  _stopTypingTimer() {
    if (this._typingTimer !== null) { this._timers.clearTimeout(this._typingTimer); }
    this._typingTimer = null;
  }

  _stopTyping(email) {
    const timer = this._typists.get(email);
    if (timer === undefined) { return; }
    this._timers.clearTimeout(timer);
    this._typists.delete(email);
    this._view.typists(Array.from(this._typists.keys()));
  }

  _clearTypists() {
    if (this._typists.size === 0) { return; }
    this._typists.forEach((timer) => this._timers.clearTimeout(timer));
    this._typists.clear();
    this._view.typists([]);
  }
}

// Join errors after which this page never joins the room again (until reloaded).
const SHUT_OUT = Object.freeze(['banned', 'not_invited', 'invalid_invite']);

// Roles, lowest first (docs/protocol.md): someone acts only on a lower one.
const RANK = Object.freeze({ moderator: 1, owner: 2, admin: 3 });

// Frame type -> its handler (called with the conversation as `this`).
const HANDLERS = {
  joined: Conversation.prototype._onJoined,
  presence: Conversation.prototype._onPresence,
  participants: Conversation.prototype._onParticipants,
  message: Conversation.prototype._onMessage,
  sent: Conversation.prototype._onSent,
  history: Conversation.prototype._onHistory,
  changed: Conversation.prototype._onChanged,
  changes: Conversation.prototype._onChanges,
  search: Conversation.prototype._onSearch,
  typing: Conversation.prototype._onTyping,
  error: Conversation.prototype._onError,
  moderated: Conversation.prototype._onModerated,
  reported: Conversation.prototype._onReported,
  report: Conversation.prototype._onReport,
  reports: Conversation.prototype._onReports,
  invite_link: Conversation.prototype._onInviteLink,
  invite_links: Conversation.prototype._onInviteLinks,
  link_revoked: Conversation.prototype._onLinkRevoked,
};
