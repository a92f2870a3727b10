// Avatars: initials on a colour derived from the e-mail, always there, with
// the person's Gravatar laid over them once (and only if) it loads. Shared
// as ChatzillaLib.avatars.
//
// Gravatar is asked with d=404, so an address without a picture fails like
// an offline network does, and the initials stay. Each address's picture is
// tried once per page load, however many avatars show it.
(function (lib) {
  'use strict';

  var GRAVATAR = 'https://www.gravatar.com/avatar/';
  var PALETTE_SIZE = 12;  // .avatar-c0 ... .avatar-c11 in chatzilla.css

  // email -> {state: 'loading' | 'loaded' | 'none', url, waiting: [elements]}
  var pictures = new Map();

  function normalized(email) { return String(email).trim().toLowerCase(); }

  // Up to two letters: "alice@..." gives "A", "jean-luc.picard@..." "JL".
  function initials(email) {
    var local = normalized(email).split('@')[0] || '?';
    var words = local.split(/[._+-]+/).filter(Boolean);
    if (words.length === 0) { words = [local]; }
    var letters = words.slice(0, 2).map(function (word) { return Array.from(word)[0]; });
    return letters.join('').toUpperCase();
  }

  // FNV-1a over the normalized address: the same colour on every page.
  function colourIndex(email) {
    var text = normalized(email);
    var hash = 0x811c9dc5;
    for (var i = 0; i < text.length; i += 1) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash % PALETTE_SIZE;
  }

  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), function (byte) {
      return byte.toString(16).padStart(2, '0');
    }).join('');
  }

  // The Gravatar URL (SHA-256 of the trimmed, lower-cased address), or null
  // where the page cannot hash: crypto.subtle exists in secure contexts
  // only (https, localhost).
  function gravatarUrl(email) {
    var subtle = window.crypto && window.crypto.subtle;
    if (!subtle || !window.isSecureContext) { return Promise.resolve(null); }
    var bytes = new TextEncoder().encode(normalized(email));
    return subtle.digest('SHA-256', bytes).then(function (digest) {
      return GRAVATAR + hex(digest) + '?s=80&d=404';
    }, function () { return null; });
  }

  function showPicture(avatar, url) {
    if (avatar.querySelector('img')) { return; }
    var img = document.createElement('img');
    img.className = 'photo';
    img.alt = '';
    img.referrerPolicy = 'no-referrer';
    img.src = url;  // loaded already: from the cache
    avatar.appendChild(img);
    avatar.classList.add('has-photo');
  }

  function settle(entry, state) {
    entry.state = state;
    if (state === 'loaded') {
      entry.waiting.forEach(function (avatar) { showPicture(avatar, entry.url); });
    }
    entry.waiting = [];
  }

  function requestPicture(email, avatar) {
    var key = normalized(email);
    var entry = pictures.get(key);
    if (entry === undefined) {
      entry = { state: 'loading', url: null, waiting: [] };
      pictures.set(key, entry);
      gravatarUrl(key).then(function (url) {
        if (!url) { settle(entry, 'none'); return; }
        entry.url = url;
        var probe = new Image();
        probe.referrerPolicy = 'no-referrer';
        probe.onload = function () { settle(entry, 'loaded'); };
        probe.onerror = function () { settle(entry, 'none'); };
        probe.src = url;
      });
    }
    if (entry.state === 'loaded') { showPicture(avatar, entry.url); }
    if (entry.state === 'loading') { entry.waiting.push(avatar); }
  }

  // A decorative avatar for `email` (the name is always written next to
  // it): `size` is "small" or "large".
  function avatar(email, size) {
    var element = document.createElement('span');
    element.className = 'avatar avatar-' + size + ' avatar-c' + colourIndex(email);
    element.setAttribute('aria-hidden', 'true');
    var letters = document.createElement('span');
    letters.className = 'initials';
    letters.textContent = initials(email);
    element.appendChild(letters);
    requestPicture(email, element);
    return element;
  }

  lib.avatars = Object.freeze({
    avatar: avatar,
    colourIndex: colourIndex
  });
}(window.ChatzillaLib = window.ChatzillaLib || {}));
