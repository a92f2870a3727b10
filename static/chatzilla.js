// Chatzilla's page: joins by e-mail, sends and shows messages over SockJS.
// Speaks wire protocol version 1 (docs/protocol.md). User text is only ever
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

  var el = {
    status: document.getElementById('status'),
    presence: document.getElementById('presence'),
    count: document.getElementById('presence-count'),
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
  var retries = 0;
  // Messages on screen, so a rejoin never repeats one. Keyed by id AND
  // server time: a restarted server (in-memory backend) numbers from 1
  // again, and its new message 1 is not the old message 1.
  var shown = new Set();
  var pending = new Map();  // ref -> content awaiting its `sent`
  var refCounter = 0;

  function setStatus(text) { el.status.textContent = text; }

  function showError(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function send(frame) {
    sock.send(JSON.stringify(frame));
  }

  function connect() {
    sock = new SockJS(CHAT_URL, null, forced.length ? { transports: forced } : {});
    sock.onopen = function () {
      retries = 0;
      setStatus('');
      if (wantedEmail) { send({ type: 'join', email: wantedEmail }); }
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
      case 'message': return showMessage(frame);
      case 'sent': return onSent(frame);
      case 'error': return onError(frame);
      default: console.warn('Chatzilla: unknown frame type', frame.type);
    }
  }

  function onJoined(frame) {
    joined = true;
    myEmail = frame.email;
    el.joinForm.hidden = true;
    el.chat.hidden = false;
    el.presence.hidden = false;
    el.count.textContent = String(frame.participants.length);
    frame.history.forEach(showMessage);
    el.text.focus();
  }

  function onPresence(frame) {
    el.count.textContent = String(frame.count);
    showNotice(frame.email + (frame.event === 'join' ? ' joined' : ' left'));
  }

  function onSent(frame) {
    var content = pending.get(frame.ref);
    if (content === undefined) { return; }
    pending.delete(frame.ref);
    showMessage({ id: frame.id, sender: myEmail, content: content, ts: frame.ts });
    // Clear only if the user has not started another message meanwhile.
    if (el.text.value.trim() === content) { el.text.value = ''; }
    showError(el.composerError, '');
  }

  function onError(frame) {
    if (frame.code === 'invalid_email') {
      wantedEmail = null;
      showError(el.joinError, 'The server did not accept this address: ' + frame.reason);
      el.email.focus();
      return;
    }
    if (frame.ref !== undefined) { pending.delete(frame.ref); }
    if (frame.code === 'already_joined') { return; }
    showError(el.composerError, frame.reason);
  }

  function append(item) {
    el.messages.appendChild(item);
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function clock(ts) {
    var d = new Date(ts * 1000);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  function showMessage(message) {
    var key = message.id + '@' + message.ts;
    if (shown.has(key)) { return; }
    shown.add(key);
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
    append(item);
  }

  function showNotice(text) {
    var item = document.createElement('li');
    item.className = 'notice';
    item.textContent = text;
    append(item);
  }

  el.joinForm.addEventListener('submit', function (event) {
    event.preventDefault();
    showError(el.joinError, '');
    wantedEmail = el.email.value.trim();
    if (sock && sock.readyState === SockJS.OPEN) {
      send({ type: 'join', email: wantedEmail });
    } else {
      setStatus('Connecting…');
    }
  });

  el.composer.addEventListener('submit', function (event) {
    event.preventDefault();
    var content = el.text.value.trim();
    if (!content) { return; }
    if (!joined) {
      showError(el.composerError, 'Not connected: your message is kept here until we are back.');
      return;
    }
    refCounter += 1;
    var ref = 'r' + refCounter;
    pending.set(ref, content);
    send({ type: 'message', content: content, ref: ref });
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
