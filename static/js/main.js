// Chatzilla's page: joins one room by e-mail and talks over SockJS. This
// module only wires the parts together: the connection (connection.js),
// one Conversation (conversation.js) with its ConversationView per join,
// and the parts of the page that outlive a conversation (the header, the
// join form, the composer, the side panel). sockjs-client's bundle, loaded
// before this module, provides window.SockJS.

import { Connection } from './connection.js';
import { Conversation } from './conversation.js';
import { Directory } from './directory.js';
import { RoomMemory } from './rooms.js';
import { LOBBY, roomPath } from './rules.js';
import { Avatars } from './view/avatars.js';
import { Composer } from './view/composer.js';
import { ConversationView } from './view/conversation-view.js';
import { MessageList } from './view/list.js';
import { MentionPicker } from './view/mentions.js';
import { ReplyBar } from './view/reply.js';
import { SearchPanel } from './view/search.js';
import { setupNotifications } from './view/notify.js';
import { People } from './view/people.js';
import { InvitationsPanel } from './view/invitations.js';
import { ReportsPanel } from './view/reports.js';
import { RoomsPanel } from './view/rooms.js';
import { SettingsPanel } from './view/settings.js';
import { formats as makeFormats, untilMidnight } from './when.js';

const byId = (id) => document.getElementById(id);
const el = {
  status: byId('status'),
  retry: byId('retry'),
  notify: byId('notify'),
  notifyLabel: byId('notify-label'),
  leave: byId('leave'),
  toggle: byId('people-toggle'),
  sidebar: byId('sidebar'),
  roomForm: byId('room-form'),
  roomInput: byId('room-input'),
  roomError: byId('room-error'),
  joinForm: byId('join-form'),
  email: byId('email'),
  joinError: byId('join-error'),
  joinNote: byId('join-note'),
  chat: byId('chat'),
};
const STATES = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
};
const STORED_EMAIL = 'chatzilla.email';
// The list of rooms is asked for when joined, then this often (ms).
const ROOMS_EVERY_MS = 30000;
const params = new URLSearchParams(window.location.search);
// An invitation link's secret (?invite=), kept while its follower signs
// in (the mailed sign-in link brings them back to the room without it).
const STORED_INVITE = 'chatzilla.invite.';
// ?transports=a,b forces SockJS transports, for tests and debugging.
const forced = (params.get('transports') || '').split(',').filter(Boolean);
// Derived from location, so the page works behind an HTTPS proxy.
const CHAT_URL = window.location.protocol + '//' + window.location.host + '/chat';
// The room this page is for and the server's longest message, rendered by the server.
const ROOM = document.body.dataset.room || LOBBY;
const MAX_CONTENT = Number(document.body.dataset.maxContent) || 2000;
// "link": people sign in and are shown by name (protocol 2); "open": anyone
// types any address (protocol 1). ME is who is signed in, or null.
const SIGNED = document.body.dataset.auth === 'link';
const ME = SIGNED && document.body.dataset.me ? JSON.parse(document.body.dataset.me) : null;
const TITLE = document.title;
// Refs are unique per page load: a random prefix, then one per conversation.
const PAGE_REF = randomPrefix();

function randomPrefix() {
  const words = new Uint32Array(2);
  window.crypto.getRandomValues(words);
  return words[0].toString(36) + words[1].toString(36) + '-';
}

// localStorage may be missing or refuse (private modes, policies): the
// page then simply remembers nothing.
const memory = {
  get(key) {
    try { return window.localStorage.getItem(key); } catch (err) { return null; }
  },
  set(key, value) {
    try {
      if (value === null) { window.localStorage.removeItem(key); } else { window.localStorage.setItem(key, value); }
    } catch (err) { /* nothing to remember it in */ }
  },
};

const timers = {
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (id) => window.clearTimeout(id),
  now: () => Date.now(),
};
const formats = makeFormats(undefined);  // the browser's locale
const directory = new Directory();
const avatars = new Avatars(directory, SIGNED);
// The rooms this browser visited, and how each asks for attention.
const rooms = new RoomMemory(memory);
const roomsPanel = new RoomsPanel({
  visited: byId('rooms-visited'),
  active: byId('rooms-active'),
  activeTitle: byId('rooms-active-title'),
  mode: byId('notify-mode'),
}, rooms, ROOM, formats);
const notifications = setupNotifications(el.notify, el.notifyLabel, memory, ROOM, () => roomsPanel.mode());
const people = new People({
  panel: byId('people-panel'),
  people: byId('people'),
  count: byId('presence-count'),
  toggle: el.toggle,
  toggleCount: byId('people-toggle-count'),
  empty: byId('people-empty'),
  stale: byId('people-stale'),
  more: byId('people-more'),
}, avatars, { more: () => (current ? current.conversation.morePeople() : false) });
const reportsPanel = new ReportsPanel({
  panel: byId('reports-panel'),
  count: byId('reports-count'),
  load: byId('reports-load'),
  list: byId('reports'),
}, avatars, {
  load: () => (current ? current.conversation.loadReports() : 'over'),
  resolve: (report) => (current ? current.conversation.resolve(report) : 'over'),
});
const settingsPanel = new SettingsPanel({
  panel: byId('settings-panel'),
  form: byId('settings-form'),
  topic: byId('settings-topic'),
  private: byId('settings-private'),
  readOnly: byId('settings-read-only'),
  state: byId('settings-state'),
}, (rules) => (current ? current.conversation.setRules(rules) : 'over'));
const invitations = new InvitationsPanel({
  panel: byId('invite-panel'),
  form: byId('invite-form'),
  email: byId('invite-email'),
  make: byId('invite-make'),
  made: byId('invite-made'),
  url: byId('invite-url'),
  copy: byId('invite-copy'),
  expiry: byId('invite-expiry'),
  state: byId('invite-state'),
  load: byId('invite-load'),
  links: byId('invite-links'),
}, avatars, (ts) => formats.longTime(ts), (secret) => {
  const url = new URL(window.location.href);
  url.search = '?invite=' + encodeURIComponent(secret);
  url.hash = '';
  return url.href;
}, {
  invite: (email) => (current ? current.conversation.invite(email) : 'over'),
  make: () => (current ? current.conversation.makeLink() : 'over'),
  load: () => (current ? current.conversation.loadLinks() : 'over'),
  revoke: (id) => (current ? current.conversation.revokeLink(id) : 'over'),
});
const list = new MessageList(byId('messages'), formats, avatars);
// A search result, or a reply's quote, shows the message it names, loading
// older pages to reach it.
const reveal = (id) => { if (current) { current.conversation.reveal(id); } };

const search = new SearchPanel({
  form: byId('search-form'),
  input: byId('search-input'),
  status: byId('search-status'),
  results: byId('search-results'),
  more: byId('search-more'),
}, formats, avatars, {
  search: (q, before) => (current ? current.conversation.search(q, before) : 'offline'),
  reveal,
});
list.actions = {
  edit: (id, text) => (current ? current.conversation.edit(id, text) : 'over'),
  remove: (id) => (current ? current.conversation.remove(id) : 'over'),
  react: (id, emoji, undo) => (current ? current.conversation.react(id, emoji, undo) : 'over'),
  moderates: (sender) => (current ? current.conversation.moderates(sender) : false),
  moderate: (kind, sender, fields) => (current ? current.conversation.moderate(kind, sender, fields) : 'over'),
  report: (id, reason) => (current ? current.conversation.report(id, reason) : 'over'),
  reply: (target) => {
    replyBar.start(target);
    composer.focus();
  },
  reveal,
};

// The conversation under way, with its view, or null before joining.
let current = null;
let conversations = 0;

// Who can be mentioned: the room's people, by the names the page writes.
const mentionable = () => (current === null ? { names: [], me: null } : {
  names: current.conversation.participants.map((key) => avatars.nameOf(key)),
  me: current.conversation.me === null ? null : avatars.nameOf(current.conversation.me),
});
list.mentionable = mentionable;
// Before the composer: its keys (Enter on a choice) come first.
new MentionPicker(byId('message'), byId('mention-list'), mentionable);

// Before the composer too: Escape ends a reply.
const replyBar = new ReplyBar({
  box: byId('reply-preview'),
  text: byId('reply-preview-text'),
  cancel: byId('reply-cancel'),
  input: byId('message'),
}, avatars);

const composer = new Composer({
  form: byId('composer'),
  text: byId('message'),
  counter: byId('composer-count'),
  error: byId('composer-error'),
}, MAX_CONTENT, formats, {
  submit: (text) => {
    if (!current) { return 'over'; }
    const problem = current.conversation.submit(text, replyBar.target);
    if (problem === null) { replyBar.cancel(); }
    return problem;
  },
  typed: (text) => { if (current) { current.conversation.typed(text); } },
});

// sockjs-client's JSONP polling names each poll's callback in window._jp
// and forgets it when it gives the poll up (a close, a timeout), but cannot
// stop the poll's script, which runs when the server answers: a call of a
// name that is gone ("_jp.a1b2c3 is not a function"), thrown in the page.
// A late answer to a poll given up is dropped instead. (sockjs-client makes
// window._jp only when there is none.)
window._jp = new Proxy({}, {
  get: (callbacks, name) => (name in callbacks ? callbacks[name] : () => {}),
});

const connection = new Connection({
  open: () => new window.SockJS(CHAT_URL, null, forced.length ? { transports: forced } : {}),
  timers,
  listener: {
    state: showState,
    opened: () => { if (current) { current.conversation.opened(); } },
    frame: (frame) => {
      if (frame.ref === ROOMS_REF) {
        // The list of rooms (or why not: it is asked again soon).
        if (frame.type === 'rooms') { roomsPanel.answered(frame); }
        return;
      }
      if (current) { current.conversation.receive(frame); }
    },
    closed: () => {
      if (current === null) { return; }
      current.conversation.closed();
      current.view.live(false);
    },
    badFrame: (text) => console.warn('Chatzilla: a frame that is not a JSON object', text),
  },
});

// Once banned or refused from the room, the header says that instead of
// the connection's state (the connection itself stays open for nothing).
let shutOut = null;
const SHUT = {
  banned: 'Banned from this room',
  not_invited: 'Not invited',
  invalid_invite: 'Invitation not valid',
};

function showState(state) {
  el.status.dataset.state = shutOut === null ? state : 'refused';
  el.status.textContent = shutOut === null ? STATES[state] : shutOut;
  el.retry.hidden = shutOut !== null || state !== 'reconnecting';
}

// The invitation link's secret this page came with (?invite=), or the one
// kept while its follower signed in; kept until a join is answered.
function invitation() {
  const secret = params.get('invite');
  if (secret) {
    memory.set(STORED_INVITE + ROOM, secret);
    return secret;
  }
  return memory.get(STORED_INVITE + ROOM);
}

function showError(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

// -- a conversation -------------------------------------------------------------

// The page around a conversation, as its view sees it.
const page = {
  showChat(first) {
    showError(el.joinError, '');
    el.joinForm.hidden = true;
    el.chat.hidden = false;
    el.leave.hidden = false;
    el.notify.hidden = !notifications.supported;
    notifications.show();
    if (!SIGNED) { memory.set(STORED_EMAIL, current.conversation.me); }
    rooms.visit(ROOM);
    askRooms();
    if (first && !el.sidebar.contains(document.activeElement)) { composer.focus(); }
  },
  addressRefused(reason) {
    end();
    if (SIGNED) {
      // The session ended (signed out elsewhere, expired): sign in again.
      window.location.assign('/signin?room=' + encodeURIComponent(ROOM));
      return;
    }
    memory.set(STORED_EMAIL, null);
    showJoinForm();
    showError(el.joinError, 'The server did not accept this address: ' + reason);
    el.email.focus();
  },
  joinProblem(reason) {
    if (el.chat.hidden) { showError(el.joinError, reason); } else { composer.problem(reason); }
  },
  shut(code) {
    // The header says so, whatever the connection does from now on.
    shutOut = SHUT[code] || 'Not let in';
    // A link that let nobody in is not kept for the next visit.
    if (code === 'invalid_invite') { memory.set(STORED_INVITE + ROOM, null); }
    showState(connection.state);
  },
  inviteUsed() {
    memory.set(STORED_INVITE + ROOM, null);
    if (params.has('invite')) {
      // Out of the address bar and history: it has done its work.
      const url = new URL(window.location.href);
      url.searchParams.delete('invite');
      window.history.replaceState(window.history.state, '', url.href);
    }
  },
  reconnect() { connection.restart(); },
  found(answer) { search.found(answer); },
  searchProblem(reason) { search.problem(reason); },
  wantOlder(before) {
    if (current) { current.conversation.loadOlder(before); }
  },
};

// Starts a conversation as `email`; it joins once the connection is open.
function begin(email) {
  conversations += 1;
  search.clear();
  replyBar.cancel();
  const view = new ConversationView({
    list, people, composer, notifications, page, reports: reportsPanel, settings: settingsPanel, invitations,
    el: {
      messages: list.ol,
      jump: byId('jump'),
      jumpLabel: byId('jump-label'),
      typing: byId('typing'),
      topic: byId('room-topic'),
    },
    title: TITLE,
    now: timers.now,
  });
  const conversation = new Conversation({
    email,
    room: ROOM,
    send: (frame) => connection.send(frame),
    view,
    timers,
    refPrefix: PAGE_REF + conversations + '.',
    maxContent: MAX_CONTENT,
    directory: SIGNED ? directory : null,
    invite: SIGNED ? invitation() : null,
  });
  current = { conversation, view };
  if (connection.state === 'connected') { conversation.opened(); }
}

// -- the list of rooms ------------------------------------------------------------

const ROOMS_REF = PAGE_REF + 'rooms';

// What was seen here, while the tab is shown (or up to hiding it), is not
// unread any more.
function rememberSeen(hiding = false) {
  if (current !== null && current.conversation.joined && (hiding || !document.hidden)) {
    rooms.saw(ROOM, current.conversation.lastId);
  }
}

// Asks the server how the rooms are doing (joined only: it says who asks).
function askRooms() {
  rememberSeen();
  roomsPanel.render();
  if (current === null || !current.conversation.joined || connection.state !== 'connected') { return; }
  connection.send({ type: 'rooms', seen: rooms.seen(), ref: ROOMS_REF });
}

window.setInterval(askRooms, ROOMS_EVERY_MS);
window.addEventListener('pagehide', () => rememberSeen());

// Ends the conversation under way; returns false when the connection
// cannot be trusted to be in no room any more.
function end() {
  if (current === null) { return true; }
  const clean = current.conversation.leave();
  current.view.dispose();
  current = null;
  return clean;
}

function showJoinForm() {
  el.chat.hidden = true;
  el.joinForm.hidden = false;
  el.leave.hidden = true;
  el.notify.hidden = true;
}

// Leaving: the others see us go at once, the page forgets the
// conversation and the remembered address; the connection stays for the
// next join.
el.leave.addEventListener('click', () => {
  const clean = end();
  if (SIGNED) {
    // Leave signs this browser out: the server ends its session.
    byId('signout-form').submit();
    return;
  }
  memory.set(STORED_EMAIL, null);
  composer.set('');
  composer.problem('');
  showJoinForm();
  closeSidebar();
  el.joinNote.hidden = false;
  el.email.focus();
  if (!clean) { connection.restart(); }
});

el.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  showError(el.joinError, '');
  el.joinNote.hidden = true;
  end();
  begin(el.email.value.trim());
});

// -- the side panel (folded into a button on narrow screens) --------------------

function openSidebar() {
  document.body.classList.add('sidebar-open');
  el.toggle.setAttribute('aria-expanded', 'true');
  el.sidebar.focus();
}

function closeSidebar() {
  if (!document.body.classList.contains('sidebar-open')) { return; }
  document.body.classList.remove('sidebar-open');
  el.toggle.setAttribute('aria-expanded', 'false');
}

el.toggle.addEventListener('click', () => {
  if (document.body.classList.contains('sidebar-open')) { closeSidebar(); } else { openSidebar(); }
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
    closeSidebar();
    el.toggle.focus();
  }
});

// A click outside the open panel folds it again.
document.addEventListener('click', (event) => {
  if (document.body.classList.contains('sidebar-open') &&
      !el.sidebar.contains(event.target) && !el.toggle.contains(event.target)) {
    closeSidebar();
  }
});

el.roomForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const path = roomPath(el.roomInput.value);
  if (path === null) {
    showError(el.roomError, 'A room name is 1 to 64 characters: a-z, 0-9, - and _.');
    el.roomInput.focus();
    return;
  }
  showError(el.roomError, '');
  window.location.assign(path);
});

// -- the connection ---------------------------------------------------------------

el.retry.addEventListener('click', () => connection.retryNow());
// Back online, or back to the tab (a phone wakes the page up): no need to
// wait for the next attempt.
window.addEventListener('online', () => connection.retryNow());
document.addEventListener('visibilitychange', () => {
  if (current) { current.view.visibility(document.hidden); }
  if (document.hidden) { rememberSeen(true); } else {
    connection.retryNow();
    askRooms();
  }
});

// "Today" becomes "Yesterday" at midnight, with the page left open.
function relabelAtMidnight() {
  window.setTimeout(() => {
    if (current) { current.view.relabelDays(); }
    relabelAtMidnight();
  }, untilMidnight());
}

// Read-only hook for tests and debugging: the SockJS transport in use
// ("websocket", "xhr-polling", ...), or null while not connected.
window.chatzilla = Object.freeze({ transport: () => connection.transport() });

// A returning visitor joins at once: signed in, as themselves; otherwise
// as the address this browser remembers. Signed out, the page only offers
// to sign in: no connection, no composer.
const remembered = SIGNED ? null : memory.get(STORED_EMAIL);
people.set([], null);
if (SIGNED && ME) {
  directory.key(ME);
  byId('my-name').value = ME.name;
  showState('connecting');
  connection.start();
  el.chat.hidden = false;
  begin(null);
} else if (!SIGNED) {
  showState('connecting');
  connection.start();
} else {
  // Signed out: nothing to connect for until the mailed link is opened.
  // An invitation link is kept for when they are back, signed in.
  if (SIGNED) { invitation(); }
  el.status.dataset.state = 'signed-out';
  el.status.textContent = 'Not signed in';
}
if (remembered) {
  el.email.value = remembered;
  el.joinForm.hidden = true;
  el.chat.hidden = false;
  begin(remembered);
}
relabelAtMidnight();
// Ready: the forms can be used.
document.querySelectorAll('button[data-needs-script]').forEach((button) => { button.disabled = false; });
