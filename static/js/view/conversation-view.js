// What one conversation looks like: the list of messages and notices, who
// is online and who is typing, the attention it asks for while the tab is
// hidden. It is the `view` a Conversation (conversation.js) talks to; the
// page makes one per conversation and disposes of it on leaving, with every
// listener it added.

import { howLong } from '../notices.js';
import { wantsAttention } from '../rooms.js';
import { isolated } from './list.js';

const NEAR_TOP_PX = 40;     // scrolled this close to the top loads older ones
const NEAR_BOTTOM_PX = 80;  // this close to the bottom follows new messages

/**
 * `parts`: `list` (MessageList), `people` (People), `composer` (Composer),
 * `notifications`, `el` ({messages, jump, jumpLabel, typing, sidebar}),
 * `title` (the page's own title), `now()` (ms), and `page`, the page
 * around the conversation: showChat(first), addressRefused(reason),
 * joinProblem(reason), shut(code), inviteUsed(), reconnect(), wantOlder(before).
 */
export class ConversationView {
  constructor(parts) {
    this._list = parts.list;
    this._people = parts.people;
    this._composer = parts.composer;
    this._notifications = parts.notifications;
    this._el = parts.el;
    this._title = parts.title;
    this._now = parts.now;
    this._page = parts.page;
    this._reports = parts.reports || null;  // the moderators' panel (reports.js)
    this._settings = parts.settings || null;  // the owner's panel (settings.js)
    this._invitations = parts.invitations || null;  // a private room's moderators' (invitations.js)
    this._me = null;
    this._pending = new Map();  // ref -> its item, on its way or not sent
    this._below = 0;            // messages that came below the view while scrolled up
    this._stuck = true;         // at the bottom: the view follows what comes
    this._range = 0;            // how far the list scrolled when `_stuck` was last decided
    // Attention while the tab is hidden: the count in the title, and
    // whether the next message from someone else gets the "New messages" line.
    this._unread = 0;
    this._markNextUnread = document.hidden;  // opened in a background tab
    this._listening = new AbortController();
    const signal = this._listening.signal;
    const messages = this._el.messages;
    messages.addEventListener('scroll', () => {
      // A scroll while the list's size changed is the browser keeping
      // within the new bounds, not the reader moving: it decides nothing.
      if (this._scrollRange() === this._range) { this._stuck = this._nearBottom(); }
      this._range = this._scrollRange();
      if (messages.scrollTop <= NEAR_TOP_PX) { this._wantOlder(); }
      this._showJump();
    }, { signal });
    this._el.jump.addEventListener('click', () => {
      this._scrollToBottom();
      this._composer.focus();
    }, { signal });
    // The list's box shrinks when the composer grows or a line appears
    // under it: the newest message stays in view if it was.
    this._resized = new ResizeObserver(() => {
      if (this._stuck) { this._scrollToBottom(); } else { this._remember(); }
    });
    this._resized.observe(messages);
  }

  /** The conversation is over: the page forgets it. */
  dispose() {
    this.moderator(false);
    this.owner(false);
    if (this._invitations) { this._invitations.show(false); }
    this._listening.abort();
    this._resized.disconnect();
    this._el.messages.replaceChildren();
    this._el.typing.replaceChildren();
    this._people.set([], null);
    this._people.live(false);  // nobody's list: nothing to grey out
    this._el.jump.hidden = true;
    document.title = this._title;
  }

  // -- what the conversation says -------------------------------------------------

  joined({
    me, participants, first, truncated, history, roles = {}, muted = null, rules = null, canSpeak = true,
    moderator = false, owner = false, present = participants.length, morePeople = false,
  }) {
    this._me = me;
    this._page.showChat(first);
    this._people.set(participants, me, roles, present, morePeople);
    this._people.live(true);
    this._showRules(rules, canSpeak);
    this.moderator(moderator);
    this.owner(owner);
    this._inviter(moderator, rules);
    if (muted) {
      this._composer.problem('You are muted in this room ' + howLong(this._now() / 1000, muted.until) +
        (muted.reason ? ': ' + muted.reason : ''));
    }
    if (truncated) { this._list.startOver(); }
    this._atEnd(() => {
      for (const message of history) {
        const item = this._show(message);
        // After a rejoin these are news: missed while away.
        if (!first) { this._arrived(message, item); }
      }
      if (truncated) {
        // Said where the reader is: at the newest message.
        this._list.insert(this._list.textItem('notice',
          'Not every missed message is shown: scroll up to load the older ones.'), this._list.liveEnd());
      }
    }, first);
    this._fillView();
  }

  /** A page of who is here: `participants` all known so far. */
  people(participants, present, more) {
    this._people.page(participants, present, more);
  }

  presence(event, email, count) {
    this._people.change(event, email, count);
    this._atEnd(() => this._list.presence(event, email, this._now() / 1000));
  }

  message(message) {
    let item = null;
    this._atEnd(() => { item = this._show(message); });
    this._arrived(message, item);
  }

  pending(ref, content, reply = null) {
    this._removeUnreadLine();  // the reader is writing: they have caught up
    this._atEnd(() => {
      const item = this._list.pending(this._me || '', content, reply);
      this._list.insert(item, null);
      this._pending.set(ref, item);
    }, true);
  }

  confirm(ref, message) {
    const item = this._pending.get(ref);
    this._pending.delete(ref);
    if (item === undefined) {
      this.message(message);
      return;
    }
    this._atEnd(() => {
      const place = this._list.placeFor(message.id);
      this._list.confirm(item, message);
      if (place !== item) {
        // Not where it was typed: the server's order is everyone's.
        this._list.removeItem(item);
        this._list.insert(item, place);
      } else {
        this._list.tidyAround(item);
      }
    });
  }

  /** A search's results ({q, before, messages, more}). */
  found(answer) { this._page.found(answer); }

  /** The search was refused, for `reason`. */
  searchProblem(reason) { this._page.searchProblem(reason); }

  /** Shows message `id` (it is in the list): scrolled to, marked a moment, focused. */
  reveal(id) {
    const item = this._list.itemOf(id);
    if (item === null) { return; }
    item.scrollIntoView({ block: 'center' });
    this._remember();
    this._showJump();
    item.classList.add('revealed');
    item.tabIndex = -1;
    item.focus({ preventScroll: true });
    setTimeout(() => item.classList.remove('revealed'), 2000);
  }

  /** A shown message changed (edited, deleted): shown as it is now. */
  changed(message) {
    this._list.changed(message);
  }

  /** Our edit or delete of message `id` was refused, for `reason`. */
  unchanged(id, reason) {
    this._list.unchanged(id);
    this._composer.problem(reason);
  }

  unpend(ref) {
    const item = this._pending.get(ref);
    this._pending.delete(ref);
    if (item !== undefined) { this._list.removeItem(item); }
  }

  // A message refused for good: "Edit" puts its text back in the composer
  // (after what is there already) and takes it out of the list; "Remove"
  // only takes it out. Either way the composer has focus.
  fail(ref, reason) {
    const item = this._pending.get(ref);
    this._pending.delete(ref);
    if (item === undefined) { return; }
    const content = this._list.textOf(item);
    this._list.fail(item, reason, {
      edit: () => {
        const draft = this._composer.value.trim();
        this._composer.set(draft ? draft + ' ' + content : content);
        this._list.removeItem(item);
        this._composer.focus();
      },
      remove: () => {
        this._list.removeItem(item);
        this._composer.focus();
      },
    });
  }

  /** Messages missed while away, older than the catch-up's: each in its place. */
  missed(messages) {
    this._atEnd(() => {
      for (const message of messages) { this._arrived(message, this._show(message)); }
    });
  }

  older(messages) {
    const ol = this._el.messages;
    const height = ol.scrollHeight;
    const top = ol.scrollTop;
    this._list.prependOlder(messages);
    // Keep what the user was looking at where it was.
    ol.scrollTop = top + (ol.scrollHeight - height);
    this._remember();
    this._fillView();
  }

  beginning(removed) {
    this._list.beginning(removed);
  }

  typists(emails) {
    const line = this._el.typing;
    line.replaceChildren();
    if (emails.length === 1) {
      line.append(isolated(emails[0], this._list.avatars), ' is typing…');
    } else if (emails.length === 2) {
      line.append(isolated(emails[0], this._list.avatars), ' and ', isolated(emails[1], this._list.avatars), ' are typing…');
    } else if (emails.length > 2) {
      line.append('Several people are typing…');
    }
  }

  problem(reason) { this._composer.problem(reason); }

  /** Whether this person moderates the room: the reports panel shows. */
  moderator(is) {
    if (this._reports && this._moderator !== is) { this._reports.show(is); }
    this._moderator = is;
  }

  /** Whether this person sets the room's rules (its owner, an admin): the settings panel shows. */
  owner(is) {
    if (this._settings) { this._settings.show(is); }
  }

  // A private room's moderators invite people: the invitations panel shows.
  _inviter(moderator, rules) {
    if (this._invitations) { this._invitations.show(Boolean(moderator && rules && rules.private)); }
  }

  /** The join was refused for good (`code`: banned, not_invited, invalid_invite). */
  shut(code) { this._page.shut(code); }

  /** The invitation link the page came with was used (or not needed). */
  inviteUsed() { this._page.inviteUsed(); }

  /** A link we made: {secret, id, expires}. */
  linkMade(link) { if (this._invitations) { this._invitations.made(link); } }

  /** The room's links (an `invite_links` frame's, `by` as keys). */
  links(list) { if (this._invitations) { this._invitations.list(list); } }

  linkRevoked(id) { if (this._invitations) { this._invitations.revoked(id); } }

  /** Our invitation by address was carried out: `name` is invited. */
  invitedByAddress(name) { if (this._invitations) { this._invitations.invited(name); } }

  /** An invitation frame of ours was refused, for `reason`. */
  invitationProblem(reason) {
    if (this._invitations) { this._invitations.problem(reason); } else { this.problem(reason); }
  }

  /** Our report of message `id` reached the moderators. */
  reported(id) { this._list.reported(id); }

  /** The open reports (a `reports` frame's list). */
  reports(list) { if (this._reports) { this._reports.list(list); } }

  /** A new report, or one resolved (a `report` frame). */
  report(frame) { if (this._reports) { this._reports.live(frame); } }

  // The room's topic by its name; a read-only room says so to those who may not speak.
  _showRules(rules, canSpeak) {
    if (this._settings) { this._settings.rules(rules); }
    const topic = this._el.topic;
    if (topic) {
      const words = rules ? [rules.topic, rules.private ? 'private' : '', rules.read_only ? 'read-only' : '']
        .filter(Boolean).join(' · ') : '';
      topic.textContent = words;
      topic.hidden = !words;
    }
    if (!canSpeak) {
      this._composer.problem('This room is read-only: only its moderators speak here.');
    } else if (rules && this._readOnlyShown) {
      this._composer.problem('');
    }
    this._readOnlyShown = !canSpeak;
  }

  /** A moderation notice (`text`); `roles` as they are now; `mine`: it concerns this person. */
  moderated(text, { roles, action, mine, rules = null, canSpeak = true, moderator = false, owner = false }) {
    this._people.roles(roles);
    this.moderator(moderator);
    this.owner(owner);
    this._inviter(moderator, rules);
    if (action === 'rules' || action === 'grant' || action === 'revoke') { this._showRules(rules, canSpeak); }
    this._list.refreshMenus();
    this._atEnd(() => this._list.insert(this._list.textItem('notice moderation', text), this._list.liveEnd()));
    if (mine && (action === 'mute' || action === 'ban')) { this._composer.problem(text); }
    if (mine && action === 'unmute') { this._composer.problem(''); }
  }

  addressRefused(reason) { this._page.addressRefused(reason); }

  joinProblem(reason) { this._page.joinProblem(reason); }

  reconnect() { this._page.reconnect(); }

  // -- what the page says ---------------------------------------------------------

  /** The connection is up (and joined) or down: the list of people says which. */
  live(isLive) { this._people.live(isLive); }

  /** The tab was hidden or shown again. */
  visibility(hidden) {
    if (hidden) {
      this._markNextUnread = true;
      return;
    }
    this._markNextUnread = false;
    this._unread = 0;
    this._showUnread();
    // Back where they left off: the "New messages" line at the top of the
    // view if the news does not fit below it.
    const ol = this._el.messages;
    const line = ol.querySelector('li.unread-line');
    if (line && line.offsetTop < ol.scrollTop) {
      ol.scrollTop = line.offsetTop;
      this._remember();
      this._showJump();
    }
  }

  /** Says "Today", "Yesterday"... again, past midnight. */
  relabelDays() { this._list.relabelDays(); }

  // -- the list -------------------------------------------------------------------

  _show(message) {
    const item = this._list.confirmed(message);
    this._list.insert(item, this._list.placeFor(message.id));
    return item;
  }

  _nearBottom() {
    const ol = this._el.messages;
    return ol.scrollHeight - ol.scrollTop - ol.clientHeight <= NEAR_BOTTOM_PX;
  }

  _scrollRange() {
    return this._el.messages.scrollHeight - this._el.messages.clientHeight;
  }

  // After the page moved the view itself: where it is now decides.
  _remember() {
    this._range = this._scrollRange();
    this._stuck = this._nearBottom();
  }

  _scrollToBottom() {
    const ol = this._el.messages;
    ol.scrollTop = ol.scrollHeight;
    this._range = this._scrollRange();
    this._stuck = true;
    this._below = 0;
    this._showJump();
  }

  // Runs `change`, which adds to the end of the conversation; the view
  // follows if it was at the bottom (or `follow` says so), and otherwise
  // "Jump to latest" says there is more below.
  _atEnd(change, follow) {
    const stick = follow || this._nearBottom();
    const before = this._el.messages.querySelectorAll('li.message').length;
    change();
    if (stick) {
      this._scrollToBottom();
    } else {
      this._below += Math.max(0, this._el.messages.querySelectorAll('li.message').length - before);
      this._remember();
      this._showJump();
    }
  }

  _showJump() {
    const away = !this._nearBottom();
    if (!away) { this._below = 0; }
    this._el.jump.hidden = !away;
    this._el.jumpLabel.textContent = this._below > 0
      ? 'Jump to latest (' + this._below + ' new)' : 'Jump to latest';
  }

  _wantOlder() {
    this._page.wantOlder(this._list.oldestId());
  }

  // With nothing to scroll, the user cannot scroll up for more: ask now.
  _fillView() {
    const ol = this._el.messages;
    if (ol.scrollHeight <= ol.clientHeight) { this._wantOlder(); }
  }

  // -- attention while the tab is hidden --------------------------------------------

  // A message shown live (or caught up on after a rejoin): counts while
  // the tab is hidden, and may notify, as the room's mode says.
  _arrived(message, item) {
    if (item === null || message.mine || !document.hidden) { return; }
    if (this._markNextUnread) {
      this._markNextUnread = false;
      this._removeUnreadLine();
      this._list.insert(this._list.unreadLine(), item);
    }
    if (!wantsAttention(this._notifications.mode(), item.classList.contains('mentions-me'))) { return; }
    this._unread += 1;
    this._showUnread();
    this._notifications.notify(message);
  }

  _removeUnreadLine() {
    const line = this._el.messages.querySelector('li.unread-line');
    if (line) { this._list.removeItem(line); }
  }

  _showUnread() {
    document.title = this._unread ? '(' + this._unread + ') ' + this._title : this._title;
  }
}
