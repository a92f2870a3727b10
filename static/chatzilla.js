// Chatzilla's page: joins one room by e-mail, sends and shows messages over
// SockJS. Speaks wire protocol version 1 with its extensions (rooms, `since`,
// `history`, idempotent refs; docs/protocol.md). User text is only ever
// inserted with textContent, never as HTML.
(function () {
  'use strict';

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

  var el = {
    status: document.getElementById('status'),
    presence: document.getElementById('presence'),
    count: document.getElementById('presence-count'),
    roomForm: document.getElementById('room-form'),
    roomInput: document.getElementById('room-input'),
    roomError: document.getElementById('room-error'),
    joinForm: document.getElementById('join-form'),
    email: document.getElementById('email'),
    joinError: document.getElementById('join-error'),
    chat: document.getElementById('chat'),
    messages: document.getElementById('messages'),
    composer: document.getElementById('composer'),
    text: document.getElementById('message'),
    composerError: document.getElementById('composer-error')
  };

  var sock = null;
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
  // holdsComposer}. `item` is the greyed "sending…" entry in the list (null
  // while the text still waits in the composer for its `sent`). Every entry
  // is sent again, with the same ref, after each rejoin: the server
  // acknowledges a ref it already stored with the first id instead of
  // storing it twice.
  var outbox = new Map();
  // Refs are unique per page load: a random prefix and a counter.
  var REF_PREFIX = randomPrefix();
  var refCounter = 0;
  // Scrollback: `loading` is the ref of the request in flight, if any;
  // `complete` once the server said there is nothing older.
  var older = { loading: null, complete: false };

  function randomPrefix() {
    var words = new Uint32Array(2);
    window.crypto.getRandomValues(words);
    return words[0].toString(36) + words[1].toString(36) + '-';
  }

  function nextRef() {
    refCounter += 1;
    return REF_PREFIX + refCounter;
  }

  function setStatus(text) { el.status.textContent = text; }

  function showError(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function send(frame) {
    sock.send(JSON.stringify(frame));
  }

  function joinFrame() {
    var frame = { type: 'join', email: wantedEmail, room: ROOM };
    if (everJoined) { frame.since = lastId; }
    return frame;
  }

  function connect() {
    sock = new SockJS(CHAT_URL, null, forced.length ? { transports: forced } : {});
    sock.onopen = function () {
      setStatus('');
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
      holdUnacknowledged();
      var delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, retries));
      retries += 1;
      setStatus('Reconnecting…');
      // Jitter, so a restarted server is not hit by every page at once.
      window.setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
    };
  }

  function handle(frame) {
    switch (frame.type) {
      case 'joined': return onJoined(frame);
      case 'presence': return onPresence(frame);
      case 'message': return atEnd(function () { showMessage(frame); });
      case 'sent': return onSent(frame);
      case 'history': return onHistory(frame);
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
    el.joinForm.hidden = true;
    el.chat.hidden = false;
    el.presence.hidden = false;
    el.count.textContent = String(frame.participants.length);
    if (frame.truncated) {
      // More was missed than one catch-up carries: what is shown now ends
      // where the gap begins. Start over from the newest messages; scrolling
      // up loads the rest, in order.
      startOver();
    }
    atEnd(function () {
      frame.history.forEach(function (message) { showMessage(message); });
      if (frame.truncated) {
        // Said where the reader is: at the newest message.
        showNotice('Not every missed message is shown: scroll up to load the older ones.');
      }
    }, first);
    if (first) {
      // No `since`: the history is the room's latest; none means a new room.
      if (frame.history.length === 0) { reachedBeginning(); }
      el.text.focus();
    }
    outbox.forEach(function (entry, ref) {
      send({ type: 'message', content: entry.content, ref: ref });
    });
    fillView();
  }

  function onPresence(frame) {
    el.count.textContent = String(frame.count);
    atEnd(function () {
      showNotice(frame.email + (frame.event === 'join' ? ' joined' : ' left'));
    });
  }

  function onSent(frame) {
    var entry = outbox.get(frame.ref);
    if (entry === undefined) { return; }
    outbox.delete(frame.ref);
    atEnd(function () {
      // The confirmed message takes the pending entry's place (pending
      // entries are last and acks come in id order, so that is id order).
      // Already shown (a rejoin's history had it: only its ack was lost)?
      // Then the pending entry just goes.
      var next = entry.item ? entry.item.nextSibling : undefined;
      if (entry.item) { entry.item.remove(); }
      showMessage({ id: frame.id, sender: myEmail, content: entry.content, ts: frame.ts }, next);
    }, entry.holdsComposer);
    // Clear only if the user has not started another message meanwhile.
    if (entry.holdsComposer && el.text.value.trim() === entry.content) { el.text.value = ''; }
    showError(el.composerError, '');
  }

  function onError(frame) {
    if (frame.code === 'invalid_email') {
      wantedEmail = null;
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
    if (entry !== undefined && (frame.code === 'rate_limited' || frame.code === 'unavailable')) {
      // Not refused, only "not now": the same message, same ref, again
      // once the server says it may come (or after a second).
      var ref = frame.ref;
      var wait = frame.code === 'rate_limited' ? Number(frame.retry_after) || 1 : 1;
      window.setTimeout(function () {
        if (joined && outbox.get(ref) === entry) {
          send({ type: 'message', content: entry.content, ref: ref });
        }
      }, wait * 1000);
      return;
    }
    if (entry !== undefined) {
      // Refused for good (too long, empty...): not sent again.
      outbox.delete(frame.ref);
      if (entry.item) {
        fail(entry.item, frame.reason);
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

  // -- the list ---------------------------------------------------------------

  function nearBottom() {
    var list = el.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
  }

  // Runs `change`, which adds to the end of the conversation; the view
  // follows if it was at the bottom (or `follow` says so).
  function atEnd(change, follow) {
    var stick = follow || nearBottom();
    change();
    if (stick) { el.messages.scrollTop = el.messages.scrollHeight; }
  }

  // Where live items go: before the first message still waiting to be sent,
  // so those stay last, in the order they were typed.
  function liveEnd() {
    return el.messages.querySelector('li.pending');
  }

  function clock(ts) {
    var d = new Date(ts * 1000);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  function messageItem(message) {
    var mine = message.sender === myEmail;
    var item = document.createElement('li');
    item.className = mine ? 'message mine' : 'message';
    item.dataset.id = String(message.id);
    var sender = document.createElement('b');
    sender.className = 'sender';
    sender.textContent = mine ? 'Me' : message.sender;
    var time = document.createElement('time');
    time.className = 'time';
    time.dateTime = new Date(message.ts * 1000).toISOString();
    time.textContent = clock(message.ts);
    var content = document.createElement('p');
    content.className = 'content';
    content.textContent = message.content;
    item.append(sender, time, content);
    return item;
  }

  // Shows a message unless it is on screen already. A new one goes at the
  // live end (or before `before`); an older one (an ack of a message sent
  // long ago) goes before the first shown message with a higher id.
  function showMessage(message, before) {
    if (shown.has(message.id)) { return; }
    var place = before === undefined ? liveEnd() : before;
    if (message.id < lastId) {
      var later = Array.prototype.find.call(
        el.messages.querySelectorAll('li.message[data-id]'),
        function (node) { return Number(node.dataset.id) > message.id; });
      if (later) { place = later; }
    }
    shown.add(message.id);
    lastId = Math.max(lastId, message.id);
    el.messages.insertBefore(messageItem(message), place || null);
  }

  function pendingItem(content) {
    var item = document.createElement('li');
    item.className = 'message mine pending';
    var sender = document.createElement('b');
    sender.className = 'sender';
    sender.textContent = 'Me';
    var state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'sending…';
    var text = document.createElement('p');
    text.className = 'content';
    text.textContent = content;
    item.append(sender, state, text);
    el.messages.appendChild(item);
    return item;
  }

  function fail(item, reason) {
    item.classList.remove('pending');
    item.classList.add('failed');
    item.querySelector('.state').textContent = 'not sent: ' + reason;
  }

  // The connection dropped: whatever still waits for its `sent` shows as
  // pending, and leaves the composer, so pressing Enter again cannot send it
  // twice. It goes out again after the rejoin.
  function holdUnacknowledged() {
    atEnd(function () {
      outbox.forEach(function (entry) {
        if (entry.item) { return; }
        entry.item = pendingItem(entry.content);
        if (entry.holdsComposer && el.text.value.trim() === entry.content) { el.text.value = ''; }
        entry.holdsComposer = false;
      });
    });
  }

  function showNotice(text) {
    var item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    el.messages.insertBefore(item, liveEnd());
  }

  // Nothing older to load: says so at the top of the list.
  function reachedBeginning() {
    older.complete = true;
    var item = document.createElement('li');
    item.className = 'marker beginning';
    item.textContent = 'Beginning of the conversation';
    el.messages.prepend(item);
  }

  // Forgets every confirmed message, notice and marker on screen (not the
  // messages still being sent, nor the failed ones).
  function startOver() {
    el.messages.querySelectorAll('li:not(.pending):not(.failed)').forEach(function (node) {
      node.remove();
    });
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
    var list = el.messages;
    var height = list.scrollHeight;
    var top = list.scrollTop;
    var first = list.querySelector('li.message[data-id]');
    var batch = document.createDocumentFragment();
    frame.messages.forEach(function (message) {
      if (shown.has(message.id)) { return; }
      shown.add(message.id);
      batch.appendChild(messageItem(message));
    });
    list.insertBefore(batch, first);
    // Keep what the user was looking at where it was.
    list.scrollTop = top + (list.scrollHeight - height);
    if (!frame.more) { reachedBeginning(); }
    fillView();
  }

  el.messages.addEventListener('scroll', function () {
    if (el.messages.scrollTop <= NEAR_TOP_PX) { loadOlder(); }
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

  el.joinForm.addEventListener('submit', function (event) {
    event.preventDefault();
    showError(el.joinError, '');
    wantedEmail = el.email.value.trim();
    if (sock && sock.readyState === SockJS.OPEN) {
      send(joinFrame());
    } else {
      setStatus('Connecting…');
    }
  });

  el.composer.addEventListener('submit', function (event) {
    event.preventDefault();
    var content = el.text.value.trim();
    if (!content) { return; }
    var waiting = Array.from(outbox.values()).some(function (entry) {
      return entry.holdsComposer && entry.content === content;
    });
    if (waiting) { return; }  // this very text is on its way already
    var ref = nextRef();
    var entry = { content: content, item: null, holdsComposer: false };
    outbox.set(ref, entry);
    if (joined) {
      // Stays in the composer until its `sent` says it was accepted.
      entry.holdsComposer = true;
      send({ type: 'message', content: content, ref: ref });
    } else {
      // Shown now as pending; sent after the rejoin.
      atEnd(function () { entry.item = pendingItem(content); }, true);
      el.text.value = '';
    }
    showError(el.composerError, '');
  });

  el.text.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.composer.requestSubmit();
    }
  });

  // Read-only hook for tests and debugging: the SockJS transport in use
  // ("websocket", "xhr-polling", ...), or null while not connected.
  window.chatzilla = Object.freeze({
    transport: function () { return (sock && sock.transport) || null; }
  });

  connect();
}());
