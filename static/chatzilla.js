// Chatzilla's page: joins one room by e-mail, sends and shows messages over
// SockJS. Speaks wire protocol version 1 with its extensions (rooms, `since`,
// `history`, idempotent refs, `typing`; docs/protocol.md). User text is only
// ever inserted with textContent and text nodes, never as HTML.
(function (lib) {
  'use strict';

  var avatars = lib.avatars;
  var list = lib.list;

  var params = new URLSearchParams(window.location.search);
  // ?transports=a,b forces SockJS transports, for tests and debugging.
  var forced = (params.get('transports') || '').split(',').filter(Boolean);
  // Derived from location, so the page works behind an HTTPS proxy.
  var CHAT_URL = window.location.protocol + '//' + window.location.host + '/chat';
  var RETRY_MIN_MS = 500;
  var RETRY_MAX_MS = 15000;
  // The server's rule for room names (chatzilla.protocol.check_room).
  var ROOM_NAME = /^[a-z0-9_-]{1,64}$/;
  var LOBBY = 'lobby';
  // The room this page is for, rendered by the server (/ or /r/NAME).
  var ROOM = document.body.dataset.room || LOBBY;
  var PAGE_SIZE = 50;       // messages per scrollback request
  var NEAR_TOP_PX = 40;     // scrolled this close to the top loads older ones
  var NEAR_BOTTOM_PX = 80;  // this close to the bottom follows new messages
  // At most one `typing` this often: a little over the server's 2 s
  // throttle, so network jitter does not get one dropped.
  var TYPING_EVERY_MS = 2200;
  var TYPING_SHOWN_MS = 5000;  // "… is typing" lasts this long after the last one
  var STORED_EMAIL = 'chatzilla.email';
  var STATES = {
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…'
  };

  var el = {
    status: document.getElementById('status'),
    count: document.getElementById('presence-count'),
    people: document.getElementById('people'),
    peopleEmpty: document.getElementById('people-empty'),
    sidebar: document.getElementById('sidebar'),
    toggle: document.getElementById('people-toggle'),
    toggleCount: document.getElementById('people-toggle-count'),
    notify: document.getElementById('notify'),
    notifyLabel: document.getElementById('notify-label'),
    leave: document.getElementById('leave'),
    roomForm: document.getElementById('room-form'),
    roomInput: document.getElementById('room-input'),
    roomError: document.getElementById('room-error'),
    joinForm: document.getElementById('join-form'),
    email: document.getElementById('email'),
    joinError: document.getElementById('join-error'),
    joinNote: document.getElementById('join-note'),
    chat: document.getElementById('chat'),
    messages: document.getElementById('messages'),
    jump: document.getElementById('jump'),
    jumpLabel: document.getElementById('jump-label'),
    typing: document.getElementById('typing'),
    composer: document.getElementById('composer'),
    text: document.getElementById('message'),
    composerError: document.getElementById('composer-error')
  };
  var TITLE = document.title;

  var sock = null;
  var leaving = false;      // the user left: the close that follows is no outage
  var wantedEmail = null;   // what the user asked to join as; rejoined on reconnect
  var myEmail = null;       // the server's canonical form, from `joined`
  var joined = false;
  var everJoined = false;   // once true, every (re)join asks for what it missed
  var retries = 0;
  // Ids of the messages on screen. Ids are per room, durable and never
  // reused, so an id alone says whether a message is already shown.
  var shown = new Set();
  // The newest id shown; a rejoin asks for everything after it (`since`).
  var lastId = 0;
  // Messages not acknowledged yet, oldest first: ref -> {content, item,
  // holdsComposer, throttled}. `item` is the greyed "sending…" entry in the
  // list (null while the text still waits in the composer for its `sent`).
  // Every entry is sent again, with the same ref, after each rejoin: the
  // server acknowledges a ref it already stored with the first id instead
  // of storing it twice. `throttled` ones wait for `resendTimer`.
  var outbox = new Map();
  var resendTimer = null;
  // Refs are unique per page load: a random prefix and a counter.
  var REF_PREFIX = randomPrefix();
  var refCounter = 0;
  // Scrollback: `loading` is the ref of the request in flight, if any;
  // `complete` once the server said there is nothing older.
  var older = { loading: null, complete: false };
  // Who is here: e-mail -> their entry in the list.
  var present = new Map();
  // Who is typing: e-mail -> the timer that forgets it.
  var typists = new Map();
  var lastTypingSent = 0;
  var typingTimer = null;   // a `typing` due when the interval is up
  // Attention while the tab is hidden: the count in the title, and whether
  // the next message from someone else gets the "New messages" line.
  var unread = 0;
  var markNextUnread = document.hidden;  // opened in a background tab
  // Messages that arrived below the view while the reader was scrolled up.
  var below = 0;

  function randomPrefix() {
    var words = new Uint32Array(2);
    window.crypto.getRandomValues(words);
    return words[0].toString(36) + words[1].toString(36) + '-';
  }

  function nextRef() {
    refCounter += 1;
    return REF_PREFIX + refCounter;
  }

  // localStorage may be missing or refuse (private modes, policies): the
  // page then simply remembers nothing.
  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (err) { return null; }
  }

  function store(key, value) {
    try {
      if (value === null) { window.localStorage.removeItem(key); } else { window.localStorage.setItem(key, value); }
    } catch (err) { /* nothing to remember it in */ }
  }

  var notifications = lib.notifications.setup(
    el.notify, el.notifyLabel, { get: stored, set: store }, ROOM);

  // "Today" becomes "Yesterday" at midnight, with the page left open.
  function relabelAtMidnight() {
    var now = new Date();
    var midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 1);
    window.setTimeout(function () { list.relabelDays(el.messages); relabelAtMidnight(); }, midnight - now);
  }

  function setState(state) {
    el.status.dataset.state = state;
    el.status.textContent = STATES[state];
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }

  function send(frame) {
    sock.send(JSON.stringify(frame));
  }

  function joinFrame() {
    var frame = { type: 'join', email: wantedEmail, room: ROOM };
    if (everJoined) { frame.since = lastId; }
    return frame;
  }

  // -- the connection ---------------------------------------------------------

  function connect() {
    sock = new SockJS(CHAT_URL, null, forced.length ? { transports: forced } : {});
    sock.onopen = function () {
      setState('connected');
      if (wantedEmail) { send(joinFrame()); }
    };
    sock.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (err) {
        console.warn('Chatzilla: a frame that is not JSON', event.data);
        return;
      }
      handle(frame);
    };
    sock.onclose = function () {
      joined = false;
      sock = null;
      older.loading = null;  // its answer died with the connection
      stopResending();
      stopTypingTimer();
      clearTypists();
      if (leaving) {
        leaving = false;
        setState('connecting');
        connect();
        return;
      }
      holdUnacknowledged();
      var delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, retries));
      retries += 1;
      setState('reconnecting');
      // Jitter, so a restarted server is not hit by every page at once.
      window.setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
    };
  }

  function handle(frame) {
    switch (frame.type) {
      case 'joined': return onJoined(frame);
      case 'presence': return onPresence(frame);
      case 'message': return onMessage(frame);
      case 'sent': return onSent(frame);
      case 'history': return onHistory(frame);
      case 'typing': return onTyping(frame);
      case 'error': return onError(frame);
      default: console.warn('Chatzilla: unknown frame type', frame.type);
    }
  }

  function onJoined(frame) {
    var first = !everJoined;
    joined = true;
    everJoined = true;
    retries = 0;
    myEmail = frame.email;
    store(STORED_EMAIL, myEmail);
    showChat();
    setPeople(frame.participants);
    if (frame.truncated) {
      // More was missed than one catch-up carries: what is shown now ends
      // where the gap begins. Start over from the newest messages; scrolling
      // up loads the rest, in order.
      startOver();
    }
    atEnd(function () {
      frame.history.forEach(function (message) {
        var item = showMessage(message);
        // After a rejoin these are news: missed while away.
        if (!first && item) { arrived(message, item); }
      });
      if (frame.truncated) {
        // Said where the reader is: at the newest message.
        showNotice('Not every missed message is shown: scroll up to load the older ones.');
      }
    }, first);
    if (first) {
      // No `since`: the history is the room's latest; none means a new room.
      if (frame.history.length === 0) { reachedBeginning(); }
      if (!el.sidebar.contains(document.activeElement)) { el.text.focus(); }
    }
    sendOutbox(false);
    fillView();
  }

  function onPresence(frame) {
    if (frame.event === 'join') { addPerson(frame.email); } else { removePerson(frame.email); }
    setCount(frame.count);
    if (frame.event === 'leave') { stopTyping(frame.email); }
    atEnd(function () {
      showNotice(frame.email + (frame.event === 'join' ? ' joined' : ' left'));
    });
  }

  function onMessage(frame) {
    stopTyping(frame.sender);
    var item = null;
    atEnd(function () { item = showMessage(frame); });
    if (item) { arrived(frame, item); }
  }

  function onSent(frame) {
    var entry = outbox.get(frame.ref);
    if (entry === undefined) { return; }
    outbox.delete(frame.ref);
    removeUnreadLine();  // the reader is writing: they have caught up
    atEnd(function () {
      // The confirmed message takes the pending entry's place (pending
      // entries are last and acks come in id order, so that is id order).
      // Already shown (a rejoin's history had it: only its ack was lost)?
      // Then the pending entry just goes.
      var next = entry.item ? entry.item.nextElementSibling : undefined;
      if (entry.item) { list.removeItem(entry.item); }
      showMessage({ id: frame.id, sender: myEmail, content: entry.content, ts: frame.ts }, next);
    }, entry.holdsComposer);
    releaseComposer(entry);
    showError(el.composerError, '');
  }

  function onError(frame) {
    if (frame.code === 'invalid_email') {
      wantedEmail = null;
      store(STORED_EMAIL, null);
      showJoinForm();
      showError(el.joinError, 'The server did not accept this address: ' + frame.reason);
      el.email.focus();
      return;
    }
    if (frame.code === 'already_joined') { return; }
    if (frame.ref !== undefined && frame.ref === older.loading) {
      older.loading = null;  // scrolling to the top again retries
      return;
    }
    var entry = frame.ref === undefined ? undefined : outbox.get(frame.ref);
    if (frame.code === 'rate_limited' || frame.code === 'unavailable') {
      // Not refused, only "not now": nothing was stored. Sent again, same
      // ref, in order, after the wait the server names (or a second).
      if (entry !== undefined) {
        resendLater(entry, frame.code === 'rate_limited' ? frame.retry_after : 1);
      }
      // Anything else refused for speed (a `typing`) just did not happen.
      return;
    }
    if (entry !== undefined) {
      // Refused for good (too long, empty...): not sent again.
      outbox.delete(frame.ref);
      if (entry.item) {
        failed(entry.item, entry.content, frame.reason);
        return;
      }
    }
    if (!joined && frame.ref === undefined && wantedEmail) {
      // The join itself failed (say the history could not be read): hang
      // up, and the reconnect loop joins again after a pause.
      showError(el.joinError, frame.reason);
      if (sock) { sock.close(); }
      return;
    }
    showError(el.composerError, frame.reason);
  }

  // A message shown in the list and refused for good: "Edit" puts its text
  // back in the composer (after what is there already) and takes it out of
  // the list; "Remove" only takes it out. Either way the composer has focus.
  function failed(item, content, reason) {
    list.fail(item, reason, {
      edit: function () {
        var draft = el.text.value.trim();
        setComposer(draft ? draft + ' ' + content : content);
        list.removeItem(item);
        el.text.focus();
      },
      remove: function () {
        list.removeItem(item);
        el.text.focus();
      },
    });
  }

  // -- sending ----------------------------------------------------------------

  // Sends what waits in the outbox, in the order it was typed, each with
  // its own ref (a resend the server has already stored is not stored
  // again): everything after a (re)join, else only what the rate limit held.
  function sendOutbox(onlyThrottled) {
    outbox.forEach(function (entry, ref) {
      if (onlyThrottled && !entry.throttled) { return; }
      entry.throttled = false;
      send({ type: 'message', content: entry.content, ref: ref });
    });
  }

  // The entry no longer waits in the composer; its text leaves the composer
  // unless the user has typed something else there meanwhile.
  function releaseComposer(entry) {
    if (entry.holdsComposer && el.text.value.trim() === entry.content) { setComposer(''); }
    entry.holdsComposer = false;
  }

  function stopResending() {
    if (resendTimer !== null) { window.clearTimeout(resendTimer); }
    resendTimer = null;
  }

  // A message refused as too fast shows as pending (the composer is free
  // again) and goes out after `seconds`, with every message typed after it,
  // in the order they were typed.
  function resendLater(entry, seconds) {
    entry.throttled = true;
    if (!entry.item) {
      atEnd(function () { entry.item = pendingItem(entry.content); }, true);
      releaseComposer(entry);
    }
    var wait = Math.max(0.05, Number(seconds) || 1) * 1000;
    stopResending();
    resendTimer = window.setTimeout(function () {
      resendTimer = null;
      if (!joined) { return; }  // the rejoin sends them all
      sendOutbox(true);
    }, wait);
  }

  function submitMessage() {
    var content = el.text.value.trim();
    if (!content) { return; }
    var waiting = Array.from(outbox.values()).some(function (entry) {
      return entry.holdsComposer && entry.content === content;
    });
    if (waiting) { return; }  // this very text is on its way already
    stopTypingTimer();  // what was being typed is sent now
    var ref = nextRef();
    var entry = { content: content, item: null, holdsComposer: false, throttled: false };
    outbox.set(ref, entry);
    if (joined && resendTimer === null) {
      // Stays in the composer until its `sent` says it was accepted.
      entry.holdsComposer = true;
      send({ type: 'message', content: content, ref: ref });
    } else {
      // Shown now as pending; sent after the rejoin, or after the messages
      // waiting for the rate limit.
      entry.throttled = joined;
      atEnd(function () { entry.item = pendingItem(content); }, true);
      setComposer('');
    }
    showError(el.composerError, '');
  }

  // Someone typing tells the room, at most every TYPING_EVERY_MS: keys
  // typed sooner are told when that time is up, if the text is still there.
  function typed() {
    if (!joined || !el.text.value.trim()) { return; }
    var wait = lastTypingSent + TYPING_EVERY_MS - Date.now();
    if (wait > 0) {
      if (typingTimer === null) { typingTimer = window.setTimeout(typedLater, wait); }
      return;
    }
    lastTypingSent = Date.now();
    send({ type: 'typing' });
  }

  function typedLater() {
    typingTimer = null;
    typed();
  }

  function stopTypingTimer() {
    if (typingTimer !== null) { window.clearTimeout(typingTimer); }
    typingTimer = null;
  }

  // -- who is here, who is typing --------------------------------------------

  function personItem(email) {
    var item = document.createElement('li');
    item.className = 'person';
    item.dataset.email = email;
    var name = document.createElement('span');
    name.className = 'name';
    var address = document.createElement('span');
    address.className = 'email';
    list.writeAddress(address, email);
    name.appendChild(address);
    if (email === myEmail) {
      item.classList.add('me');
      var you = document.createElement('span');
      you.className = 'you';
      you.textContent = '(you)';
      name.append(' ', you);
    }
    item.append(avatars.avatar(email, 'small'), name);
    return item;
  }

  function addPerson(email) {
    if (present.has(email)) { return; }
    var item = personItem(email);
    present.set(email, item);
    // You first, then everyone in the order they came.
    if (email === myEmail) { el.people.prepend(item); } else { el.people.appendChild(item); }
  }

  function removePerson(email) {
    var item = present.get(email);
    if (item) { item.remove(); }
    present.delete(email);
  }

  function setPeople(emails) {
    present.clear();
    el.people.replaceChildren();
    emails.forEach(addPerson);  // you go first whatever your place here
    setCount(emails.length);
  }

  function setCount(n) {
    el.count.textContent = String(n);
    el.toggleCount.textContent = String(n);
    el.count.hidden = el.toggleCount.hidden = !joined && n === 0;
    el.peopleEmpty.hidden = joined || n > 0;
    el.toggle.setAttribute('aria-label', "Who's online: " + n);
  }

  function onTyping(frame) {
    if (frame.email === myEmail) { return; }
    var timer = typists.get(frame.email);
    if (timer !== undefined) { window.clearTimeout(timer); }
    typists.set(frame.email, window.setTimeout(function () { stopTyping(frame.email); }, TYPING_SHOWN_MS));
    showTypists();
  }

  function stopTyping(email) {
    var timer = typists.get(email);
    if (timer === undefined) { return; }
    window.clearTimeout(timer);
    typists.delete(email);
    showTypists();
  }

  function clearTypists() {
    typists.forEach(function (timer) { window.clearTimeout(timer); });
    typists.clear();
    showTypists();
  }

  function showTypists() {
    var names = Array.from(typists.keys());
    if (names.length === 0) {
      el.typing.textContent = '';
    } else if (names.length === 1) {
      el.typing.textContent = names[0] + ' is typing…';
    } else if (names.length === 2) {
      el.typing.textContent = names[0] + ' and ' + names[1] + ' are typing…';
    } else {
      el.typing.textContent = 'Several people are typing…';
    }
  }

  // -- attention while the tab is hidden --------------------------------------

  // A message shown live (or caught up on after a rejoin): counts while the
  // tab is hidden, and may notify.
  function arrived(message, item) {
    if (message.sender === myEmail) { return; }
    if (!document.hidden) { return; }
    if (markNextUnread) {
      markNextUnread = false;
      removeUnreadLine();
      var line = list.unreadLine();
      el.messages.insertBefore(line, item);
      list.tidyAround(line);
    }
    unread += 1;
    showUnread();
    notifications.notify(message);
  }

  function removeUnreadLine() {
    var line = el.messages.querySelector('li.unread-line');
    if (line) { list.removeItem(line); }
  }

  function showUnread() {
    document.title = unread ? '(' + unread + ') ' + TITLE : TITLE;
  }

  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      markNextUnread = true;
      return;
    }
    markNextUnread = false;
    unread = 0;
    showUnread();
    // Back where they left off: the "New messages" line at the top of the
    // view if the news does not fit below it.
    var line = el.messages.querySelector('li.unread-line');
    if (line && line.offsetTop < el.messages.scrollTop) {
      el.messages.scrollTop = line.offsetTop;
      showJump();
    }
  });

  // -- the list ---------------------------------------------------------------

  function nearBottom() {
    var list = el.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
  }

  function scrollToBottom() {
    el.messages.scrollTop = el.messages.scrollHeight;
    below = 0;
    showJump();
  }

  // Runs `change`, which adds to the end of the conversation; the view
  // follows if it was at the bottom (or `follow` says so), and otherwise
  // the "Jump to latest" button says there is more below.
  function atEnd(change, follow) {
    var stick = follow || nearBottom();
    var before = shown.size;
    change();
    if (stick) {
      scrollToBottom();
    } else {
      below += shown.size - before;
      showJump();
    }
  }

  function showJump() {
    var away = !nearBottom();
    if (!away) { below = 0; }
    el.jump.hidden = !away;
    el.jumpLabel.textContent = below > 0
      ? 'Jump to latest (' + below + ' new)' : 'Jump to latest';
  }

  el.jump.addEventListener('click', function () {
    scrollToBottom();
    if (joined) { el.text.focus(); }
  });

  // Where live items go: before the first message still waiting to be sent,
  // so those stay last, in the order they were typed.
  function liveEnd() {
    return el.messages.querySelector('li.pending');
  }

  // Shows a message unless it is on screen already; returns its item, or
  // null. A new one goes at the live end (or before `before`); an older one
  // (an ack of a message sent long ago) goes before the first shown message
  // with a higher id.
  function showMessage(message, before) {
    if (shown.has(message.id)) { return null; }
    var place = before === undefined ? liveEnd() : before;
    if (message.id < lastId) {
      var later = Array.prototype.find.call(
        el.messages.querySelectorAll('li.message[data-id]'),
        function (node) { return Number(node.dataset.id) > message.id; });
      if (later) { place = list.dayLineAbove(later); }
    }
    shown.add(message.id);
    lastId = Math.max(lastId, message.id);
    var item = list.confirmed(message, message.sender === myEmail);
    el.messages.insertBefore(item, place || null);
    list.tidyAround(item);
    return item;
  }

  // Shows one of ours as pending, at the end of the list.
  function pendingItem(content) {
    var item = list.pending(myEmail || wantedEmail || '', content);
    el.messages.appendChild(item);
    list.tidyAround(item);
    return item;
  }

  // The connection dropped: whatever still waits for its `sent` shows as
  // pending, and leaves the composer, so pressing Enter again cannot send it
  // twice. It goes out again after the rejoin.
  function holdUnacknowledged() {
    atEnd(function () {
      outbox.forEach(function (entry) {
        if (entry.item) { return; }
        entry.item = pendingItem(entry.content);
        releaseComposer(entry);
      });
    });
  }

  function showNotice(message) {
    var item = list.notice(message);
    el.messages.insertBefore(item, liveEnd());
    list.tidyAround(item);
  }

  // Nothing older to load: says so at the top of the list.
  function reachedBeginning() {
    older.complete = true;
    el.messages.prepend(list.marker('Beginning of the conversation'));
  }

  // Forgets every confirmed message, notice and marker on screen (not the
  // messages still being sent, nor the failed ones).
  function startOver() {
    el.messages.querySelectorAll('li:not(.pending):not(.failed)').forEach(function (node) {
      node.remove();
    });
    el.messages.querySelectorAll('li.message').forEach(list.tidy);
    shown.clear();
    older.complete = false;
  }

  // -- scrollback -------------------------------------------------------------

  function oldestShown() {
    var first = el.messages.querySelector('li.message[data-id]');
    return first ? Number(first.dataset.id) : null;
  }

  function loadOlder() {
    if (!joined || older.loading !== null || older.complete) { return; }
    var before = oldestShown();
    if (before === null) { return; }
    older.loading = nextRef();
    send({ type: 'history', before: before, limit: PAGE_SIZE, ref: older.loading });
  }

  // With nothing to scroll, the user cannot scroll up for more: ask now.
  function fillView() {
    if (el.messages.scrollHeight <= el.messages.clientHeight) { loadOlder(); }
  }

  function onHistory(frame) {
    if (older.loading === null) { return; }  // an answer for a dropped connection
    older.loading = null;
    var messages = el.messages;
    var height = messages.scrollHeight;
    var top = messages.scrollTop;
    var first = messages.querySelector('li.message[data-id]');
    // Older than everything shown: at the top.
    var place = messages.firstElementChild;
    var added = [];
    frame.messages.forEach(function (message) {
      if (shown.has(message.id)) { return; }
      shown.add(message.id);
      var item = list.confirmed(message, message.sender === myEmail);
      messages.insertBefore(item, place);
      added.push(item);
    });
    added.forEach(list.tidy);
    if (first) { list.tidy(first); }
    // Keep what the user was looking at where it was.
    messages.scrollTop = top + (messages.scrollHeight - height);
    if (!frame.more) { reachedBeginning(); }
    fillView();
  }

  el.messages.addEventListener('scroll', function () {
    if (el.messages.scrollTop <= NEAR_TOP_PX) { loadOlder(); }
    showJump();
  });

  // -- joining and leaving ----------------------------------------------------

  function showChat() {
    el.joinForm.hidden = true;
    el.chat.hidden = false;
    el.leave.hidden = false;
    el.notify.hidden = !notifications.supported;
    notifications.show();
  }

  function showJoinForm() {
    el.chat.hidden = true;
    el.joinForm.hidden = false;
    el.leave.hidden = true;
    el.notify.hidden = true;
  }

  // Leaving: the connection closes (the others see us leave), the page
  // forgets the conversation and the remembered address, and a fresh
  // connection waits for the next join.
  function leave() {
    wantedEmail = null;
    store(STORED_EMAIL, null);
    outbox.clear();
    stopResending();
    clearTypists();
    el.messages.replaceChildren();
    shown.clear();
    lastId = 0;
    everJoined = false;
    joined = false;
    myEmail = null;
    older = { loading: null, complete: false };
    unread = 0;
    below = 0;
    showUnread();
    setPeople([]);
    setComposer('');
    showError(el.composerError, '');
    showJoinForm();
    closeSidebar();
    el.joinNote.hidden = false;
    el.email.focus();
    if (sock) {
      leaving = true;
      sock.close();
    }
  }

  el.leave.addEventListener('click', leave);

  el.joinForm.addEventListener('submit', function (event) {
    event.preventDefault();
    showError(el.joinError, '');
    el.joinNote.hidden = true;
    wantedEmail = el.email.value.trim();
    if (sock && sock.readyState === SockJS.OPEN) {
      send(joinFrame());
    } else {
      setState('connecting');
    }
  });

  // -- the side panel (folded into a button on narrow screens) ----------------

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

  el.toggle.addEventListener('click', function () {
    if (document.body.classList.contains('sidebar-open')) { closeSidebar(); } else { openSidebar(); }
  });

  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
      closeSidebar();
      el.toggle.focus();
    }
  });

  // A click outside the open panel folds it again.
  document.addEventListener('click', function (event) {
    if (document.body.classList.contains('sidebar-open') &&
        !el.sidebar.contains(event.target) && !el.toggle.contains(event.target)) {
      closeSidebar();
    }
  });

  // -- forms ------------------------------------------------------------------

  el.roomForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var name = el.roomInput.value.trim();
    if (!ROOM_NAME.test(name)) {
      showError(el.roomError, 'A room name is 1 to 64 characters: a-z, 0-9, - and _.');
      el.roomInput.focus();
      return;
    }
    showError(el.roomError, '');
    window.location.assign(name === LOBBY ? '/' : '/r/' + name);
  });

  el.composer.addEventListener('submit', function (event) {
    event.preventDefault();
    submitMessage();
  });

  el.text.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.composer.requestSubmit();
    }
  });

  // The composer grows with what is typed (up to the CSS max-height);
  // browsers with `field-sizing: content` do that by themselves.
  var GROWS = window.CSS && CSS.supports && CSS.supports('field-sizing', 'content');

  function fitComposer() {
    if (GROWS) { return; }
    el.text.style.height = 'auto';
    el.text.style.height = el.text.scrollHeight + 2 + 'px';
  }

  function setComposer(value) {
    el.text.value = value;
    fitComposer();
  }

  el.text.addEventListener('input', function () {
    fitComposer();
    typed();
  });

  // Read-only hook for tests and debugging: the SockJS transport in use
  // ("websocket", "xhr-polling", ...), or null while not connected.
  window.chatzilla = Object.freeze({
    transport: function () { return (sock && sock.transport) || null; }
  });

  // A returning visitor joins at once, as the address this browser remembers.
  var remembered = stored(STORED_EMAIL);
  if (remembered) {
    el.email.value = remembered;
    wantedEmail = remembered;
    el.joinForm.hidden = true;
    el.chat.hidden = false;
  }
  setCount(0);
  relabelAtMidnight();
  setState('connecting');
  connect();
}(window.ChatzillaLib));
