// Avatars: initials on a colour derived from the e-mail (or the public id),
// always there, with the person's Gravatar laid over them once (and only
// if) it loads.
//
// Gravatar is asked with d=404, so an address without a picture fails like
// an offline network does, and the initials stay. Each address's picture is
// tried once per page load, however many avatars show it.

const GRAVATAR = 'https://www.gravatar.com/avatar/';
const PALETTE_SIZE = 12;  // .avatar-c0 ... .avatar-c11 in chatzilla.css

function normalized(email) { return String(email).trim().toLowerCase(); }

/** Up to two letters: "alice@..." gives "A", "jean-luc.picard@..." "JL". */
export function initials(email) {
  const local = normalized(email).split('@')[0] || '?';
  let words = local.split(/[._+-]+/).filter(Boolean);
  if (words.length === 0) { words = [local]; }
  return words.slice(0, 2).map((word) => Array.from(word)[0]).join('').toUpperCase();
}

/** FNV-1a over the normalized address: the same colour on every page. */
export function colourIndex(email) {
  const text = normalized(email);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % PALETTE_SIZE;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

// The Gravatar URL (SHA-256 of the trimmed, lower-cased address), or null
// where the page cannot hash: crypto.subtle exists in secure contexts only
// (https, localhost).
function gravatarUrl(email) {
  const subtle = window.crypto && window.crypto.subtle;
  if (!subtle || !window.isSecureContext) { return Promise.resolve(null); }
  const bytes = new TextEncoder().encode(normalized(email));
  return subtle.digest('SHA-256', bytes).then(
    (digest) => GRAVATAR + hex(digest) + '?s=80&d=404', () => null);
}

/** An address as text, which may break after its "@" when too long for its line. */
export function writeAddress(parent, email) {
  const at = email.lastIndexOf('@') + 1;
  parent.append(email.slice(0, at), document.createElement('wbr'), email.slice(at));
}

function showPicture(avatar, url) {
  if (avatar.querySelector('img')) { return; }
  const img = document.createElement('img');
  img.className = 'photo';
  img.alt = '';
  img.referrerPolicy = 'no-referrer';
  img.src = url;  // loaded already: from the cache
  avatar.appendChild(img);
  avatar.classList.add('has-photo');
}

/**
 * Makes avatars and writes people's names, remembering for the page's life
 * which pictures load. Everyone is known by a key: their address (protocol
 * 1), or their public id, whose name and picture `directory` keeps
 * (protocol 2, where `verified` is true: the server checked who they are).
 */
export class Avatars {
  constructor(directory = null, verified = false) {
    this._directory = directory;
    this.verified = verified;
    // key -> {state: 'loading' | 'loaded' | 'none', url, waiting: [elements]}
    this._pictures = new Map();
  }

  _person(key) { return this._directory ? this._directory.person(key) : null; }

  /** What to call `key`: a signed-in person's name, else the address itself. */
  nameOf(key) {
    const person = this._person(key);
    return person ? person.name : key;
  }

  /**
   * Writes who `key` is into `parent`: a person's name (their id on hover,
   * to tell two of the same name apart), or an address that may break
   * after its "@".
   */
  write(parent, key) {
    const person = this._person(key);
    if (!person) {
      writeAddress(parent, key);
      return;
    }
    parent.append(person.name);
    parent.title = person.name + ' · ' + person.id;
  }

  /** A decorative avatar (the name is always written next to it); `size` is "small" or "large". */
  avatar(key, size) {
    const person = this._person(key);
    const element = document.createElement('span');
    element.className = 'avatar avatar-' + size + ' avatar-c' + colourIndex(key);
    element.setAttribute('aria-hidden', 'true');
    const letters = document.createElement('span');
    letters.className = 'initials';
    letters.textContent = person ? initials(person.name.replace(/\s+/g, '.')) : initials(key);
    element.appendChild(letters);
    this._request(key, element, person);
    return element;
  }

  _request(email, avatar, person) {
    const key = normalized(email);
    let entry = this._pictures.get(key);
    if (entry === undefined) {
      entry = { state: 'loading', url: null, waiting: [] };
      this._pictures.set(key, entry);
      // A person's picture was hashed by the server; an address's, here.
      const asked = person ? Promise.resolve(person.avatar || null) : gravatarUrl(key);
      asked.then((url) => {
        if (!url) { settle(entry, 'none'); return; }
        entry.url = url;
        const probe = new Image();
        probe.referrerPolicy = 'no-referrer';
        probe.onload = () => settle(entry, 'loaded');
        probe.onerror = () => settle(entry, 'none');
        probe.src = url;
      });
    }
    if (entry.state === 'loaded') { showPicture(avatar, entry.url); }
    if (entry.state === 'loading') { entry.waiting.push(avatar); }
  }
}

function settle(entry, state) {
  entry.state = state;
  if (state === 'loaded') { entry.waiting.forEach((avatar) => showPicture(avatar, entry.url)); }
  entry.waiting = [];
}
