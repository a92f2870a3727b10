// The conversation list (<ol id="messages">): its items and its order of
// reading, with no chat state. Confirmed messages are in the order of their
// ids, the server's order; messages on their way are last, in the order
// they were typed; notices and messages that were not sent stay where they
// happened.
//
// Every message item carries data-sender, data-ts (seconds) and data-day;
// after an item is added or taken away, tidyAround / removeItem keep the
// day lines and groups right for it and the message below it. User text is
// only ever inserted as text (textContent, text nodes), never as HTML, and
// with dir="auto", so a right-to-left message reads right to left.

import { blocks } from '../markup.js';
import { quoteOf } from '../rules.js';
import { writeAddress } from './avatars.js';
import { presenceNotice, withName } from '../notices.js';
import { GROUP_GAP_S, dayKey } from '../when.js';

/**
 * Someone's name (or address), isolated from the text around it whichever
 * way it reads; `avatars` knows the names of signed-in people.
 */
export function isolated(key, avatars = null) {
  const bdi = document.createElement('bdi');
  if (avatars) { avatars.write(bdi, key); } else { writeAddress(bdi, key); }
  return bdi;
}

function isMessage(node) {
  return node !== null && node.classList.contains('message');
}

// The message above `node`, and what lies between them.
function messageBefore(node) {
  const between = [];
  let prev = node.previousElementSibling;
  while (prev !== null && !isMessage(prev)) {
    between.push(prev);
    prev = prev.previousElementSibling;
  }
  return { message: prev, between };
}

function messageAfter(node) {
  let next = node.nextElementSibling;
  while (next !== null && !isMessage(next)) { next = next.nextElementSibling; }
  return next;
}

// A line item with a label: a day, "New messages".
function line(className, label) {
  const item = document.createElement('li');
  item.className = className;
  const span = document.createElement('span');
  span.textContent = label;
  item.appendChild(span);
  return item;
}

function timeElement(ts, formats) {
  const time = document.createElement('time');
  time.className = 'time';
  time.dateTime = new Date(ts * 1000).toISOString();
  time.textContent = formats.clock(ts);
  time.title = formats.longTime(ts);
  return time;
}

// A message's text, its markup (markup.js) as elements, its web
// addresses as links, the mentions of `people` ({names, me}) marked (and
// the message, when one is of `me`): built node by node, user text only
// ever as text. Returns whether it mentions `me`.
function writeContent(element, content, people = { names: [], me: null }) {
  const me = people.me === null ? null : people.me.toLocaleLowerCase();
  let mentionsMe = false;
  const inlineNode = (part) => {
    if (part.mention === undefined) { return markupNode(part, inlineNode); }
    const span = document.createElement('span');
    span.className = 'mention';
    span.textContent = part.mention;
    if (part.name.toLocaleLowerCase() === me) {
      span.classList.add('me');
      mentionsMe = true;
    }
    return span;
  };
  element.replaceChildren(...blocks(content, people.names).flatMap((block) => {
    if (block.type === 'code') {
      const pre = document.createElement('pre');
      const code = document.createElement('code');
      code.textContent = block.text;
      pre.appendChild(code);
      return [pre];
    }
    const nodes = block.inline.map(inlineNode);
    if (block.type === 'text') { return nodes; }
    const quote = document.createElement('blockquote');
    quote.append(...nodes);
    return [quote];
  }));
  return mentionsMe;
}

// One part of inline markup as a node; `inner` makes the nodes inside.
function markupNode(part, inner) {
  if (part.text !== undefined) { return document.createTextNode(part.text); }
  if (part.code !== undefined) {
    const code = document.createElement('code');
    code.textContent = part.code;
    return code;
  }
  if (part.href !== undefined) {
    const link = document.createElement('a');
    link.href = part.href;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.textContent = part.link;
    return link;
  }
  const element = document.createElement(part.strong ? 'strong' : 'em');
  element.append(...(part.strong || part.em).map(inner));
  return element;
}

function actionButton(label, description, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'action';
  button.textContent = label;
  button.setAttribute('aria-label', description);
  button.addEventListener('click', onClick);
  return button;
}

// The picker's reactions; any other emoji can be typed in its box.
const COMMON_EMOJI = Object.freeze(['👍', '❤️', '😂', '🎉', '😮', '😢']);

// What the page's own checks of an edit say, in words.
const PROBLEMS = Object.freeze({
  empty: 'an edit cannot be empty: delete the message instead',
  too_long: 'too long',
  offline: 'not connected: try again once connected',
  over: 'not in this room any more',
});

/** The list `ol`, with times in `formats` (when.js) and avatars from `avatars`. */
export class MessageList {
  constructor(ol, formats, avatars) {
    this.ol = ol;
    this._formats = formats;
    this._avatars = avatars;
    this._notices = new WeakMap();  // presence notice item -> {event, names, ts}
    this._actions = {
      edit: () => 'over', remove: () => 'over', react: () => 'over', moderates: () => false, moderate: () => 'over',
      reply: () => {}, reveal: () => {},
    };
    this._texts = new WeakMap();  // message item -> its text as sent (a reply quotes it)
    this._people = () => ({ names: [], me: null });
  }

  /** Who writes people's names and makes their avatars (avatars.js). */
  get avatars() { return this._avatars; }

  // -- items --------------------------------------------------------------------

  // A message item's avatar, sender ("Me" for `mine`) and content; returns
  // the item and the line the sender is on, for the time or the state.
  _messageItem(email, ts, content, mine) {
    const item = document.createElement('li');
    item.className = mine ? 'message mine' : 'message';
    item.dataset.sender = email;
    item.dataset.ts = String(ts);
    item.dataset.day = dayKey(ts);
    const body = document.createElement('div');
    body.className = 'body';
    const meta = document.createElement('p');
    meta.className = 'meta';
    const sender = document.createElement('b');
    sender.className = 'sender';
    if (mine) {
      sender.textContent = 'Me';
    } else {
      sender.dir = 'auto';
      this._avatars.write(sender, email);
    }
    meta.appendChild(sender);
    if (!this._avatars.verified) {
      // --auth open: nobody checked this address belongs to its sender.
      const mark = document.createElement('span');
      mark.className = 'unverified';
      mark.textContent = 'unverified';
      mark.title = 'Anyone can type any address on this server';
      meta.append(' ', mark);
    }
    // A div: a message may hold blocks (quotes, code), which no p may.
    const paragraph = document.createElement('div');
    paragraph.className = 'content';
    paragraph.dir = 'auto';
    item.classList.toggle('mentions-me', writeContent(paragraph, content, this._people()));
    this._texts.set(item, content);
    body.append(meta, paragraph);
    item.append(this._avatars.avatar(email, 'large'), body);
    return { item, meta };
  }

  /**
   * What the page does with messages' menus: `edit(id, text)`,
   * `remove(id)` (our own, or anyone's for a moderator), `react(id, emoji,
   * undo)` (any), `moderates(sender)` (whether this person may moderate the
   * sender) and `moderate(kind, sender, fields)` (mute, ban), each null
   * when on its way, else a reason it is not; `reply({id, sender,
   * content})` starts a reply to a message, `reveal(id)` shows one.
   */
  set actions(actions) { this._actions = actions; }

  /**
   * A confirmed message ({id, sender, content, ts, mine}, and `edited` or
   * `deleted` once changed, `replyTo` and `reply` for a reply): with its
   * id, time and menu.
   */
  confirmed(message) {
    const parts = this._messageItem(message.sender, message.ts, message.content, message.mine);
    parts.item.dataset.id = String(message.id);
    parts.meta.appendChild(timeElement(message.ts, this._formats));
    if (message.replyTo !== undefined) { this._showQuote(parts.item, message.replyTo, message.reply || null); }
    this._addMenu(parts.item);
    this._addReactButton(parts.item);
    if (!message.mine && this._avatars.verified) { this._addReportButton(parts.item); }  // signed in: protocol 2
    this._showChange(parts.item, message);
    return parts.item;
  }

  /** Roles changed: others' messages' menus offer (or no longer offer) the moderator's actions. */
  refreshMenus() {
    for (const item of this.ol.querySelectorAll('li.message[data-id]:not(.mine):not(.deleted)')) {
      const more = item.querySelector('.more');
      if (more === null || more.getAttribute('aria-label') === this._menuLabel(item)) { continue; }
      this._closeEditing(item);  // reopened, it offers what is allowed now
      more.setAttribute('aria-label', this._menuLabel(item));
    }
  }

  // A reply's quote of the message it answers (`reply`: {sender, excerpt,
  // deleted}; null when not known), above its text: a button that shows
  // that message. Text nodes only.
  _showQuote(item, replyTo, reply) {
    item.dataset.replyTo = String(replyTo);
    let quote = item.querySelector('.reply-quote');
    if (quote === null) {
      quote = document.createElement('button');
      quote.type = 'button';
      quote.className = 'reply-quote';
      quote.title = 'Show the message it replies to';
      quote.addEventListener('click', () => this._actions.reveal(Number(item.dataset.replyTo)));
      item.querySelector('.content').before(quote);
    }
    const lead = document.createElement('span');
    lead.className = 'visually-hidden';
    lead.textContent = 'In reply to ';
    const text = document.createElement('span');
    text.className = 'excerpt';
    text.dir = 'auto';
    if (reply === null) {
      quote.replaceChildren(lead, 'an earlier message');
      return;
    }
    const name = isolated(reply.sender, this._avatars);
    if (reply.mine) { name.textContent = 'Me'; }
    name.className = 'quoted-sender';
    text.textContent = reply.deleted ? 'message deleted' : reply.excerpt;
    quote.classList.toggle('deleted', reply.deleted);
    quote.replaceChildren(lead, name, ': ', text);
  }

  // The replies shown to `message` quote it as it is now (edited, deleted).
  _requote(message) {
    const replies = this.ol.querySelectorAll(`li.message[data-reply-to="${Number(message.id)}"]:not(.deleted)`);
    for (const item of replies) {
      this._showQuote(item, message.id, {
        sender: message.sender, mine: Boolean(message.mine), excerpt: quoteOf(message.content),
        deleted: Boolean(message.deleted),
      });
    }
  }

  /**
   * Who can be mentioned: `people()` gives {names, me}, the names of the
   * room's people as the page writes them and one's own (null: none).
   */
  set mentionable(people) { this._people = people; }

  /** The text of message `item` as it was typed (its markup characters too), as it is now. */
  textOf(item) {
    const text = this._texts.get(item);
    return text === undefined ? item.querySelector('.content').textContent : text;
  }

  /** The item of confirmed message `id`, or null when it is not shown. */
  itemOf(id) {
    return this.ol.querySelector(`li.message[data-id="${Number(id)}"]`);
  }

  /** Shows message `message` as it is now (edited, deleted), where it is, and in the replies' quotes. */
  changed(message) {
    const item = this.itemOf(message.id);
    if (item === null) { return; }
    const content = item.querySelector('.content');
    item.classList.toggle('mentions-me', writeContent(content, message.content, this._people()));
    this._texts.set(item, message.content);
    // A live change of a reply carries no quote: the one shown stays.
    if (message.replyTo !== undefined && message.reply !== undefined) {
      this._showQuote(item, message.replyTo, message.reply);
    }
    this._closeEditing(item);
    this._showChange(item, message);
    this._requote(message);
  }

  /** Our change of message `id` did not go through: it shows as it was. */
  unchanged(id) {
    const item = this.itemOf(id);
    if (item !== null) { this._closeEditing(item); }
  }

  // "(edited)" with its time, or "message deleted" instead of the text.
  _showChange(item, message) {
    const meta = item.querySelector('.meta');
    const content = item.querySelector('.content');
    if (message.deleted) {
      item.classList.add('deleted');
      content.textContent = 'message deleted';
      meta.querySelectorAll('.edited, .more, .react').forEach((node) => node.remove());
      item.querySelectorAll('.message-menu, .reactions, .picker, .reply-quote').forEach((node) => node.remove());
      return;
    }
    this._showReactions(item, message.reactions || []);
    if (message.edited === undefined) { return; }
    let mark = meta.querySelector('.edited');
    if (mark === null) {
      mark = document.createElement('span');
      mark.className = 'edited';
      mark.textContent = '(edited)';
      meta.querySelector('.time').after(' ', mark);
    }
    mark.title = 'edited ' + this._formats.longTime(message.edited);
  }

  // One button per emoji: the emoji and its count, pressed when we gave
  // it (a click takes ours back, or adds it); who gave it on hover.
  _showReactions(item, reactions) {
    let row = item.querySelector('.reactions');
    if (reactions.length === 0) {
      row?.remove();
      return;
    }
    if (row === null) {
      row = document.createElement('div');
      row.className = 'reactions';
      item.querySelector('.content').after(row);
    }
    const id = Number(item.dataset.id);
    row.replaceChildren(...reactions.map((reaction) => {
      const names = reaction.people.map((key) => this._avatars.nameOf(key)).join(', ');
      const count = reaction.people.length;
      const button = actionButton(`${reaction.emoji} ${count}`,
        `${reaction.emoji} from ${names}: ${reaction.mine ? 'take yours back' : 'add yours'}`, () => {
          const problem = this._actions.react(id, reaction.emoji, reaction.mine);
          if (problem) { this._say(item, problem); }
        });
      button.classList.add('reaction');
      button.title = names;
      button.setAttribute('aria-pressed', String(reaction.mine));
      return button;
    }));
  }

  // Every message's button for a new reaction: a picker of a few common
  // ones, and a box for any emoji.
  _addReactButton(item) {
    const react = actionButton('☺+', 'Add a reaction', () => this._togglePicker(item));
    react.classList.add('react');
    react.setAttribute('aria-expanded', 'false');
    item.querySelector('.meta').append(react);
  }

  _togglePicker(item) {
    const react = item.querySelector('.react');
    const open = item.querySelector('.picker');
    if (open !== null) {
      open.remove();
      react.setAttribute('aria-expanded', 'false');
      return;
    }
    const id = Number(item.dataset.id);
    const picker = document.createElement('form');
    picker.className = 'picker';
    const pick = (emoji) => {
      const problem = this._actions.react(id, emoji, false);
      if (problem) {
        this._say(item, problem);
        return;
      }
      this._togglePicker(item);
    };
    for (const emoji of COMMON_EMOJI) {
      const button = actionButton(emoji, `React with ${emoji}`, () => pick(emoji));
      button.classList.add('emoji');
      picker.append(button);
    }
    const any = document.createElement('input');
    any.type = 'text';
    any.size = 4;
    any.maxLength = 16;
    any.placeholder = 'any';
    any.setAttribute('aria-label', 'Any emoji');
    const add = document.createElement('button');
    add.type = 'submit';
    add.className = 'action';
    add.textContent = 'Add';
    picker.append(' ', any, ' ', add);
    picker.addEventListener('submit', (event) => {
      event.preventDefault();
      if (any.value.trim()) { pick(any.value.trim()); }
    });
    picker.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        this._togglePicker(item);
        react.focus();
      }
    });
    item.querySelector('.body').append(picker);
    react.setAttribute('aria-expanded', 'true');
    picker.querySelector('button').focus();
  }

  // A message's menu: a button that opens Reply, then Edit and Delete
  // (ours), or the moderator's Delete, Mute and Ban (someone else's, when
  // this person moderates its sender).
  _addMenu(item) {
    const more = actionButton('⋯', this._menuLabel(item), () => this._toggleMenu(item));
    more.classList.add('more');
    more.setAttribute('aria-expanded', 'false');
    item.querySelector('.meta').append(more);
  }

  _menuLabel(item) {
    if (item.classList.contains('mine')) { return 'Reply to, edit or delete this message'; }
    return this._actions.moderates(item.dataset.sender) ? 'Reply to or moderate this message'
      : 'Reply to this message';
  }

  _toggleMenu(item) {
    const open = item.querySelector('.message-menu');
    const more = item.querySelector('.more');
    if (open !== null) {
      open.remove();
      more.setAttribute('aria-expanded', 'false');
      return;
    }
    const menu = document.createElement('div');
    menu.className = 'message-menu';
    menu.append(actionButton('Reply', 'Write a reply to this message', () => {
      this._toggleMenu(item);
      this._actions.reply({
        id: Number(item.dataset.id), sender: item.dataset.sender, content: this.textOf(item),
        mine: item.classList.contains('mine'),
      });
    }));
    if (item.classList.contains('mine')) {
      menu.append(' ',
        actionButton('Edit', 'Edit this message', () => this._startEditing(item)), ' ',
        actionButton('Delete', 'Delete this message', () => this._confirmDelete(item, menu)));
    } else if (this._actions.moderates(item.dataset.sender)) {
      menu.append(' ',
        actionButton('Delete', 'Delete this message', () => this._confirmDelete(item, menu)), ' ',
        actionButton('Mute 10 min', 'Mute 10 min: its sender, in this room',
          () => this._sanction(item, 'mute', { minutes: 10 })), ' ',
        actionButton('Ban', 'Ban its sender from this room', () => this._confirmBan(item, menu)));
    }
    menu.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') { this._toggleMenu(item); more.focus(); }
    });
    item.querySelector('.body').append(menu);
    more.setAttribute('aria-expanded', 'true');
    menu.querySelector('button').focus();
  }

  _confirmDelete(item, menu) {
    const question = document.createElement('span');
    question.textContent = 'Delete this message for everyone?';
    menu.replaceChildren(question, ' ',
      actionButton('Delete', 'Delete this message for everyone', () => {
        this._closeEditing(item);
        const problem = this._actions.remove(Number(item.dataset.id));
        if (problem) { this._say(item, problem); }
      }), ' ',
      actionButton('Cancel', 'Keep this message', () => this._toggleMenu(item)));
    menu.querySelector('button').focus();
  }

  // Others' messages: a button to report one to the room's moderators.
  _addReportButton(item) {
    const flag = actionButton('⚑', 'Report this message to the moderators', () => this._toggleReport(item));
    flag.classList.add('report-button');
    item.querySelector('.meta').append(flag);
  }

  _toggleReport(item) {
    const open = item.querySelector('.report-form');
    if (open !== null) {
      open.remove();
      return;
    }
    const form = document.createElement('form');
    form.className = 'report-form';
    const reason = document.createElement('input');
    reason.type = 'text';
    reason.maxLength = 200;
    reason.placeholder = 'why (for the moderators)';
    reason.setAttribute('aria-label', 'Why you report it');
    const send = document.createElement('button');
    send.type = 'submit';
    send.className = 'action';
    send.textContent = 'Report';
    send.setAttribute('aria-label', 'Report it');
    form.append(reason, ' ', send, ' ', actionButton('Cancel', 'Do not report', () => form.remove()));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const problem = this._actions.report(Number(item.dataset.id), reason.value.trim());
      form.remove();
      this._say(item, problem || 'reporting…');
    });
    item.querySelector('.body').append(form);
    reason.focus();
  }

  /** Our report of message `id` reached the moderators. */
  reported(id) {
    const item = this.itemOf(id);
    if (item !== null) { this._say(item, 'reported to the moderators'); }
  }

  // Ban: a reason (optional), then Ban or Cancel.
  _confirmBan(item, menu) {
    const form = document.createElement('form');
    form.className = 'ban-form';
    const reason = document.createElement('input');
    reason.type = 'text';
    reason.maxLength = 200;
    reason.placeholder = 'reason (shown to them)';
    reason.setAttribute('aria-label', 'Why they are banned');
    const ban = document.createElement('button');
    ban.type = 'submit';
    ban.className = 'action';
    ban.textContent = 'Ban';
    ban.setAttribute('aria-label', 'Ban them from this room');
    form.append(reason, ' ', ban, ' ', actionButton('Cancel', 'Do not ban', () => this._toggleMenu(item)));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this._sanction(item, 'ban', reason.value.trim() ? { reason: reason.value.trim() } : {});
    });
    menu.replaceChildren(form);
    reason.focus();
  }

  _sanction(item, kind, fields) {
    this._closeEditing(item);
    const problem = this._actions.moderate(kind, item.dataset.sender, fields);
    if (problem) { this._say(item, problem); }
  }

  // The text in a box in place, with Save and Cancel (Enter, Escape).
  _startEditing(item) {
    this._closeEditing(item);
    const content = item.querySelector('.content');
    const form = document.createElement('form');
    form.className = 'editor';
    const box = document.createElement('textarea');
    box.value = this.textOf(item);  // as typed: what shows has no markup characters left
    box.rows = Math.min(6, box.value.split('\n').length);
    box.setAttribute('aria-label', 'Edit the message');
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'action';
    save.textContent = 'Save';
    form.append(box, ' ', save, ' ', actionButton('Cancel', 'Stop editing', () => this._closeEditing(item)));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const problem = this._actions.edit(Number(item.dataset.id), box.value);
      if (problem) {
        this._say(item, problem);
        return;
      }
      this._closeEditing(item);
      this._say(item, 'saving…');
    });
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === 'Escape') {
        this._closeEditing(item);
        item.querySelector('.more')?.focus();
      }
    });
    content.hidden = true;
    content.after(form);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  // Back to showing the message: no editor, menu or state line.
  _closeEditing(item) {
    item.querySelectorAll('.editor, .message-menu, .change-state').forEach((node) => node.remove());
    item.querySelector('.content').hidden = false;
    item.querySelector('.more')?.setAttribute('aria-expanded', 'false');
  }

  _say(item, text) {
    item.querySelector('.change-state')?.remove();
    const state = document.createElement('span');
    state.className = 'change-state';
    state.textContent = PROBLEMS[text] || text;
    item.querySelector('.meta').append(state);
  }

  /** One of ours on its way: greyed, "sending…"; a reply with its quote (`reply`, else null). */
  pending(email, content, reply = null) {
    const parts = this._messageItem(email, Date.now() / 1000, content, true);
    parts.item.classList.add('pending');
    if (reply !== null) { this._showQuote(parts.item, reply.replyTo, reply); }
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'sending…';
    parts.meta.appendChild(state);
    return parts.item;
  }

  /** Turns the pending `item` into the confirmed `message`, where it is. */
  confirm(item, message) {
    item.classList.remove('pending');
    item.dataset.id = String(message.id);
    item.dataset.ts = String(message.ts);
    item.dataset.day = dayKey(message.ts);
    item.querySelector('.state').replaceWith(timeElement(message.ts, this._formats));
    this._addMenu(item);
    this._addReactButton(item);
  }

  /**
   * Refused for good: says why, and offers to edit it (its text back in
   * the composer) or remove it; `actions` holds the two callbacks. The
   * group below it starts anew.
   */
  fail(item, reason, actions) {
    item.classList.remove('pending');
    item.classList.add('failed');
    const state = item.querySelector('.state');
    state.textContent = 'not sent: ' + reason;
    const buttons = document.createElement('span');
    buttons.className = 'fixes';
    buttons.append(actionButton('Edit', 'Edit the message that was not sent', actions.edit),
      ' ', actionButton('Remove', 'Remove the message that was not sent', actions.remove));
    state.after(' ', buttons);
    this.tidyAround(item);
  }

  /** A line of text in the list that is not a message. */
  textItem(className, text) {
    const item = document.createElement('li');
    item.className = className;
    item.textContent = text;
    return item;
  }

  /** Says at the top of the list that nothing older is left (`removed`: no longer kept). */
  beginning(removed = false) {
    this.ol.prepend(this.textItem('marker beginning',
      removed ? 'Older messages are no longer kept' : 'Beginning of the conversation'));
  }

  unreadLine() { return line('unread-line', 'New messages'); }

  // -- places -------------------------------------------------------------------

  /** Where live items go: before the first message still on its way. */
  liveEnd() {
    return this.ol.querySelector('li.pending');
  }

  /**
   * Where the confirmed message `id` goes: before the first confirmed one
   * with a higher id, else at the live end.
   */
  placeFor(id) {
    const confirmed = this.ol.querySelectorAll('li.message[data-id]');
    const last = confirmed[confirmed.length - 1];
    if (last === undefined || Number(last.dataset.id) < id) { return this.liveEnd(); }
    const later = Array.prototype.find.call(confirmed, (node) => Number(node.dataset.id) > id);
    return later === undefined ? this.liveEnd() : this._dayLineAbove(later);
  }

  // `item`, or the day line right above it: where something earlier goes.
  _dayLineAbove(item) {
    const prev = item.previousElementSibling;
    return prev !== null && prev.classList.contains('day') ? prev : item;
  }

  /** Inserts `item` before `place` (null: at the end) and tidies around it. */
  insert(item, place) {
    this.ol.insertBefore(item, place);
    this.tidyAround(item);
  }

  /** The oldest confirmed message's id, or null. */
  oldestId() {
    const first = this.ol.querySelector('li.message[data-id]');
    return first ? Number(first.dataset.id) : null;
  }

  // -- presence notices ---------------------------------------------------------

  /**
   * Someone came or went at `ts`: a notice at the live end, told together
   * with the notice right above it when that one is of the same kind and
   * recent. Returns the notice item.
   */
  presence(event, email, ts) {
    const place = this.liveEnd();
    const above = place ? place.previousElementSibling : this.ol.lastElementChild;
    const earlier = above && this._notices.get(above);
    let names = [email];
    if (earlier && earlier.event === event && ts - earlier.ts < GROUP_GAP_S) {
      names = withName(earlier.names, email);
      // A new item, not an edited one: the live region reads additions.
      above.remove();
    }
    const item = this._presenceItem(event, names, ts);
    this.ol.insertBefore(item, place);
    return item;
  }

  _presenceItem(event, names, ts) {
    const notice = presenceNotice(event, names);
    const item = document.createElement('li');
    item.className = 'notice presence';
    item.dataset.event = event;
    const what = document.createElement('span');
    what.className = 'what';
    if (notice.subject) {
      what.append(notice.subject);
      item.title = notice.names.map((name) => this._avatars.nameOf(name)).join(', ');
    } else {
      notice.names.forEach((name, i) => {
        if (i > 0) { what.append(' and '); }
        what.appendChild(isolated(name, this._avatars));
      });
    }
    what.append(' ' + notice.verb);
    item.append(what, ' ', timeElement(ts, this._formats));
    this._notices.set(item, { event, names, ts });
    return item;
  }

  // -- days and groups ----------------------------------------------------------

  // Puts a day line above `item` when its day differs from the message
  // above's (or it is the first), takes away one no longer needed, and
  // marks `item` "continued" when it follows a message of the same sender,
  // shortly before, with nothing in between.
  tidy(item) {
    const above = messageBefore(item);
    const prev = above.message;
    const ts = Number(item.dataset.ts);
    const newDay = prev === null || prev.dataset.day !== item.dataset.day;
    const days = above.between.filter((node) => node.classList.contains('day'));
    if (newDay) {
      if (days.length === 0) {
        // Right under the message above (over any notices since), or at
        // the top, under the beginning of the conversation.
        let at = prev !== null ? prev.nextElementSibling : this.ol.firstElementChild;
        if (at !== item && at.classList.contains('marker')) { at = at.nextElementSibling; }
        this.ol.insertBefore(line('day', this._formats.dayLabel(ts)), at);
      } else {
        days[0].firstChild.textContent = this._formats.dayLabel(ts);
        days.slice(1).forEach((day) => day.remove());
      }
    } else {
      days.forEach((day) => day.remove());
    }
    const continued = !newDay && above.between.length === 0 &&
      prev.dataset.sender === item.dataset.sender &&
      ts - Number(prev.dataset.ts) < GROUP_GAP_S &&
      !prev.classList.contains('failed');
    item.classList.toggle('continued', continued);
  }

  /** After `node` was added or changed: tidies it (if a message) and the message below. */
  tidyAround(node) {
    if (isMessage(node)) { this.tidy(node); }
    const next = messageAfter(node);
    if (next !== null) { this.tidy(next); }
  }

  /** Takes `node` out of the list and tidies what closes up behind it. */
  removeItem(node) {
    const next = messageAfter(node);
    node.remove();
    if (next !== null) {
      this.tidy(next);
      return;
    }
    const days = this.ol.querySelectorAll('li.day');
    const last = days[days.length - 1];
    if (last && messageAfter(last) === null) { last.remove(); }  // a day line over nothing
  }

  /** Says "Today", "Yesterday"... again: for a page left open past midnight. */
  relabelDays() {
    this.ol.querySelectorAll('li.day').forEach((day) => {
      const next = messageAfter(day);
      if (next !== null) { day.firstChild.textContent = this._formats.dayLabel(Number(next.dataset.ts)); }
    });
  }

  /**
   * Forgets every confirmed message, notice and marker (not the messages
   * on their way, nor those not sent).
   */
  startOver() {
    this.ol.querySelectorAll('li:not(.pending):not(.failed)').forEach((node) => node.remove());
    this.ol.querySelectorAll('li.message').forEach((item) => this.tidy(item));
  }

  /** Adds `messages`, older than everything shown, at the top, in order. */
  prependOlder(messages) {
    const first = this.ol.querySelector('li.message[data-id]');
    const place = this.ol.firstElementChild;
    const added = messages.map((message) => {
      const item = this.confirmed(message);
      this.ol.insertBefore(item, place);
      return item;
    });
    added.forEach((item) => this.tidy(item));
    if (first) { this.tidy(first); }
  }
}
