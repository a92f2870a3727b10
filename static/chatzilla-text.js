// Chatzilla's text helpers, no DOM state: message text with its links, and
// times and days in the reader's zone. Shared as ChatzillaLib.text.
(function (lib) {
  'use strict';

  // A candidate link: http:// or https:// up to the next white space or
  // character that cannot be in a URL typed in a chat.
  var CANDIDATE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  // Taken off the end: sentence punctuation after a link is not part of it.
  var TRAILING = /[.,;:!?*_~]+$/;
  var CLOSERS = { ')': '(', ']': '[', '}': '{' };
  // Built once: a formatter is costly to set up, and every message shows a date.
  var DATE = new Intl.DateTimeFormat('en-GB', {
    weekday: 'long', day: 'numeric', month: 'long', year: 'numeric'
  });
  var DATE_TIME = new Intl.DateTimeFormat('en-GB', {
    weekday: 'long', day: 'numeric', month: 'long', year: 'numeric',
    hour: '2-digit', minute: '2-digit'
  });

  function count(text, ch) { return text.split(ch).length - 1; }

  // "(see https://x.org/a_(b))." keeps the balanced ")" and drops the rest.
  function trimEnd(url) {
    for (;;) {
      var before = url;
      url = url.replace(TRAILING, '');
      var last = url.charAt(url.length - 1);
      var opener = CLOSERS[last];
      if (opener && count(url, last) > count(url, opener)) { url = url.slice(0, -1); }
      if (url === before) { return url; }
    }
  }

  // The URL's href when `text` is an http(s) address with a host, else null.
  function safeHref(text) {
    var url;
    try { url = new URL(text); } catch (err) { return null; }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) { return null; }
    return url.href;
  }

  // Appends `text` to `parent` as text nodes, with each http/https URL in it
  // as a link that opens in a new tab and tells the target nothing about us.
  // Never parses anything as HTML.
  function appendLinkified(parent, text) {
    var at = 0;
    var match;
    CANDIDATE.lastIndex = 0;
    while ((match = CANDIDATE.exec(text)) !== null) {
      var raw = trimEnd(match[0]);
      var href = safeHref(raw);
      if (!href) { continue; }
      if (match.index > at) { parent.appendChild(document.createTextNode(text.slice(at, match.index))); }
      var link = document.createElement('a');
      link.href = href;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      link.textContent = raw;
      parent.appendChild(link);
      at = match.index + raw.length;
      CANDIDATE.lastIndex = at;
    }
    if (at < text.length) { parent.appendChild(document.createTextNode(text.slice(at))); }
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  // HH:MM in the reader's zone, from a server ts (seconds since the epoch).
  function clock(ts) {
    var d = new Date(ts * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  // The reader's calendar day of a ts, as YYYY-MM-DD (sortable, comparable).
  function dayKey(ts) {
    var d = new Date(ts * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  // "Today", "Yesterday", or the weekday and date ("Monday, 24 November 2025").
  function dayLabel(ts) {
    var now = new Date();
    var key = dayKey(ts);
    if (key === dayKey(now.getTime() / 1000)) { return 'Today'; }
    var yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1, 12);
    if (key === dayKey(yesterday.getTime() / 1000)) { return 'Yesterday'; }
    return DATE.format(new Date(ts * 1000));
  }

  // The full date and time, for a message time's tooltip.
  function longTime(ts) {
    return DATE_TIME.format(new Date(ts * 1000));
  }

  lib.text = Object.freeze({
    appendLinkified: appendLinkified,
    clock: clock,
    dayKey: dayKey,
    dayLabel: dayLabel,
    longTime: longTime
  });
}(window.ChatzillaLib = window.ChatzillaLib || {}));
