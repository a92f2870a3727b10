// The conversation list's items and its order of reading, with no chat
// state: messages (confirmed or pending), notices, day lines and groups.
// Shared as ChatzillaLib.list.
//
// Every message item carries data-sender, data-ts (seconds) and data-day;
// after an item is added or taken away, `tidyAround` / `removeItem` keep the
// day lines and groups right for it and the message below it.
(function (lib) {
  'use strict';

  var text = lib.text;
  var avatars = lib.avatars;
  // One sender's messages closer together than this form a group.
  var GROUP_GAP_S = 300;

  // An address as text, which may break after its "@" when it is too long
  // for its line.
  function writeAddress(parent, email) {
    var at = email.lastIndexOf('@') + 1;
    parent.append(email.slice(0, at), document.createElement('wbr'), email.slice(at));
  }

  function isMessage(node) {
    return node !== null && node.classList.contains('message');
  }

  // The message above `node`, and what lies between them.
  function messageBefore(node) {
    var between = [];
    var prev = node.previousElementSibling;
    while (prev !== null && !isMessage(prev)) {
      between.push(prev);
      prev = prev.previousElementSibling;
    }
    return { message: prev, between: between };
  }

  function messageAfter(node) {
    var next = node.nextElementSibling;
    while (next !== null && !isMessage(next)) { next = next.nextElementSibling; }
    return next;
  }

  // A line item with a label: a day, "New messages".
  function line(className, label) {
    var item = document.createElement('li');
    item.className = className;
    var span = document.createElement('span');
    span.textContent = label;
    item.appendChild(span);
    return item;
  }

  // Puts a day line above `item` when its day differs from the message
  // above's (or it is the first), takes away one no longer needed, and
  // marks `item` "continued" when it follows a message of the same sender,
  // shortly before, with nothing in between.
  function tidy(item) {
    var list = item.parentNode;
    var above = messageBefore(item);
    var prev = above.message;
    var ts = Number(item.dataset.ts);
    var newDay = prev === null || prev.dataset.day !== item.dataset.day;
    var days = above.between.filter(function (node) { return node.classList.contains('day'); });
    if (newDay) {
      if (days.length === 0) {
        // Right under the message above (over any notices since), or at
        // the top, under the beginning of the conversation.
        var at = prev !== null ? prev.nextElementSibling : list.firstElementChild;
        if (at !== item && at.classList.contains('marker')) { at = at.nextElementSibling; }
        list.insertBefore(line('day', text.dayLabel(ts)), at);
      } else {
        days[0].firstChild.textContent = text.dayLabel(ts);
        days.slice(1).forEach(function (day) { day.remove(); });
      }
    } else {
      days.forEach(function (day) { day.remove(); });
    }
    var continued = !newDay && above.between.length === 0 &&
      prev.dataset.sender === item.dataset.sender &&
      ts - Number(prev.dataset.ts) < GROUP_GAP_S &&
      !prev.classList.contains('failed');
    item.classList.toggle('continued', continued);
  }

  // After `node` was added: tidies it (if a message) and the message below.
  function tidyAround(node) {
    if (isMessage(node)) { tidy(node); }
    var next = messageAfter(node);
    if (next !== null) { tidy(next); }
  }

  // Takes `node` out of the list and tidies what closes up behind it.
  function removeItem(node) {
    var list = node.parentNode;
    var next = messageAfter(node);
    node.remove();
    if (next !== null) {
      tidy(next);
      return;
    }
    var days = list.querySelectorAll('li.day');
    var last = days[days.length - 1];
    if (last && messageAfter(last) === null) { last.remove(); }  // a day line over nothing
  }

  // Says "Today", "Yesterday"... again: for a page left open past midnight.
  function relabelDays(list) {
    list.querySelectorAll('li.day').forEach(function (day) {
      var next = messageAfter(day);
      if (next !== null) { day.firstChild.textContent = text.dayLabel(Number(next.dataset.ts)); }
    });
  }

  // `item`, or the day line right above it: where something earlier goes.
  function dayLineAbove(item) {
    var prev = item.previousElementSibling;
    return prev !== null && prev.classList.contains('day') ? prev : item;
  }

  // A message item's avatar, sender ("Me" for `mine`) and content; returns
  // the line the sender is on, for the time or the state to go after it.
  function messageItem(email, ts, content, mine) {
    var item = document.createElement('li');
    item.className = mine ? 'message mine' : 'message';
    item.dataset.sender = email;
    item.dataset.ts = String(ts);
    item.dataset.day = text.dayKey(ts);
    var body = document.createElement('div');
    body.className = 'body';
    var meta = document.createElement('p');
    meta.className = 'meta';
    var sender = document.createElement('b');
    sender.className = 'sender';
    if (mine) { sender.textContent = 'Me'; } else { writeAddress(sender, email); }
    meta.appendChild(sender);
    var paragraph = document.createElement('p');
    paragraph.className = 'content';
    text.appendLinkified(paragraph, content);
    body.append(meta, paragraph);
    item.append(avatars.avatar(email, 'large'), body);
    return { item: item, meta: meta };
  }

  // A confirmed message: with its id and its time.
  function confirmed(message, mine) {
    var parts = messageItem(message.sender, message.ts, message.content, mine);
    parts.item.dataset.id = String(message.id);
    var time = document.createElement('time');
    time.className = 'time';
    time.dateTime = new Date(message.ts * 1000).toISOString();
    time.textContent = text.clock(message.ts);
    time.title = text.longTime(message.ts);
    parts.meta.appendChild(time);
    return parts.item;
  }

  // One of ours not acknowledged yet: greyed, "sending…".
  function pending(email, content) {
    var parts = messageItem(email, Date.now() / 1000, content, true);
    parts.item.classList.add('pending');
    var state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'sending…';
    parts.meta.appendChild(state);
    return parts.item;
  }

  // Refused for good: says why, and offers to edit it (its text back in the
  // composer) or remove it; `actions` holds the two callbacks. The group
  // below it starts anew.
  function fail(item, reason, actions) {
    item.classList.remove('pending');
    item.classList.add('failed');
    var state = item.querySelector('.state');
    state.textContent = 'not sent: ' + reason;
    var buttons = document.createElement('span');
    buttons.className = 'fixes';
    buttons.append(actionButton('Edit', 'Edit the message that was not sent', actions.edit),
                   ' ', actionButton('Remove', 'Remove the message that was not sent',
                                     actions.remove));
    state.after(' ', buttons);
    tidyAround(item);
  }

  function actionButton(label, description, onClick) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'action';
    button.textContent = label;
    button.setAttribute('aria-label', description);
    button.addEventListener('click', onClick);
    return button;
  }

  // A line of text in the list that is not a message.
  function textItem(className, message) {
    var item = document.createElement('li');
    item.className = className;
    item.textContent = message;
    return item;
  }

  function notice(message) { return textItem('notice', message); }

  function marker(message) { return textItem('marker beginning', message); }

  lib.list = Object.freeze({
    writeAddress: writeAddress,
    tidy: tidy,
    tidyAround: tidyAround,
    removeItem: removeItem,
    relabelDays: relabelDays,
    dayLineAbove: dayLineAbove,
    confirmed: confirmed,
    pending: pending,
    fail: fail,
    notice: notice,
    marker: marker,
    unreadLine: function () { return line('unread-line', 'New messages'); }
  });
}(window.ChatzillaLib = window.ChatzillaLib || {}));
