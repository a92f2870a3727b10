// The server's rules, mirrored so the page can say at once what the server
// would refuse (chatzilla/protocol.py is the authority). No DOM.

// What the server trims off a message: Python's str.isspace() characters
// below U+3001, minus the separators U+001C..U+001F (protocol._BLANK).
// JavaScript's own trim() differs (it takes U+FEFF, leaves U+0085).
const BLANK = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING = new RegExp('^[' + BLANK + ']+');
const TRAILING = new RegExp('[' + BLANK + ']+$');

// A room name (protocol.check_room): 1 to 64 of a-z, 0-9, - and _.
const ROOM_NAME = /^[a-z0-9_-]{1,64}$/;
export const LOBBY = 'lobby';

/** Message text as the server stores it: trimmed of white space. */
export function trimmed(text) {
  return text.replace(LEADING, '').replace(TRAILING, '');
}

/** Characters as the server counts them: code points, not UTF-16 units. */
export function length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (unit >= 0xd800 && unit < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) { i += 1; }
    }
    n += 1;
  }
  return n;
}

/**
 * What the server would say of `text` as a message, at most `max`
 * characters long: {content, length, problem}, where `problem` is null,
 * 'empty' or 'too_long' (the server's error codes).
 */
export function checkMessage(text, max) {
  const content = trimmed(text);
  const n = length(content);
  let problem = null;
  if (n === 0) { problem = 'empty'; } else if (n > max) { problem = 'too_long'; }
  return { content, length: n, problem };
}

// What a reply shows of the message it answers (chat.quote_of): at most
// this many characters of its text, on one line.
export const EXCERPT = 100;

/**
 * `text` cut to at most `max` characters, counted in code points as the
 * server counts (an emoji is never split in half), ending in "…" when cut.
 */
export function shortened(text, max) {
  const chars = Array.from(String(text));
  if (chars.length <= max) { return String(text); }
  return chars.slice(0, max - 1).join('').trimEnd() + '…';
}

/** The start of `text` as a reply quotes it: white space runs as one space, "…" when cut. */
export function quoteOf(text) {
  return shortened(String(text).split(/\s+/).filter(Boolean).join(' '), EXCERPT);
}

/**
 * The page of the room the user typed, or null when no room has that name.
 * Room names are case-insensitive: "Dev" is the room "dev".
 */
export function roomPath(typed) {
  const name = trimmed(typed).toLowerCase();
  if (!ROOM_NAME.test(name)) { return null; }
  return name === LOBBY ? '/' : '/r/' + name;
}
