// Message text cut into plain text and http(s) links. No DOM: the view
// turns each part into a text node or a link, never parsing HTML.

// A candidate link: http:// or https:// (or a bare www.) up to the next
// white space or character that cannot be in a URL typed in a chat.
const CANDIDATE = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/gi;
// A bare www. address must name a host with a dot after "www.".
const BARE = /^www\.[^./?#]+\.[^./?#]/i;
// Taken off the end: sentence punctuation after a link is not part of it.
const TRAILING = /[.,;:!?*_~]+$/;
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

function count(text, ch) { return text.split(ch).length - 1; }

// "(see https://x.org/a_(b))." keeps the balanced ")" and drops the rest.
function trimEnd(url) {
  for (;;) {
    const before = url;
    url = url.replace(TRAILING, '');
    const last = url.charAt(url.length - 1);
    const opener = CLOSERS[last];
    if (opener && count(url, last) > count(url, opener)) { url = url.slice(0, -1); }
    if (url === before) { return url; }
  }
}

/** The URL's href when `text` is an http(s) address with a host, else null. */
export function safeHref(text) {
  let url;
  try { url = new URL(text); } catch (err) { return null; }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) { return null; }
  return url.href;
}

/**
 * `text` as a list of parts, in order: {text} for plain text and
 * {text, href} for a link (http, https, or a bare www. address, as https). Joined, the parts' text is `text` exactly.
 */
export function linkParts(text) {
  const parts = [];
  let at = 0;
  let match;
  const candidate = new RegExp(CANDIDATE);
  while ((match = candidate.exec(text)) !== null) {
    const raw = trimEnd(match[0]);
    const bare = /^www\./i.test(raw);
    // A bare address is https; one inside a word (xwww.) is no link.
    const href = bare ? (BARE.test(raw) ? safeHref('https://' + raw) : null) : safeHref(raw);
    if (!href) { continue; }
    if (match.index > at) { parts.push({ text: text.slice(at, match.index) }); }
    parts.push({ text: raw, href });
    at = match.index + raw.length;
    candidate.lastIndex = at;
  }
  if (at < text.length) { parts.push({ text: text.slice(at) }); }
  return parts;
}
