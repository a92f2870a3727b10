// A search result as it is shown: the part of the message around the first
// word searched for, each word found marked. The words are compared as the
// server finds them (docs/protocol.md, "Search"): runs of letters, digits
// and _, without case or accents; the last word searched may be the start
// of one. No DOM: the view makes <mark> elements of the marked parts.

const WORD = /[\p{L}\p{N}_]+/gu;
/** Characters of a long message shown around the first match. */
export const EXCERPT_CHARS = 140;
/** Of those, how many come before the match. */
const LEAD = 40;

function fold(word) {
  return word.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** The words of a query, as they are compared. */
export function queryWords(q) {
  return (String(q).match(WORD) || []).map(fold);
}

/**
 * `text` as [{text, mark}]: the whole of it when short, else about
 * EXCERPT_CHARS characters around the first word found, with "…" where
 * it was cut; `mark` is true for each word of `words` (queryWords) found.
 */
export function excerpt(text, words) {
  const whole = words.slice(0, -1);
  const start = words.length > 0 ? words[words.length - 1] : null;
  const found = [];
  for (const match of text.matchAll(WORD)) {
    const word = fold(match[0]);
    if (whole.includes(word) || (start !== null && word.startsWith(start))) {
      found.push([match.index, match.index + match[0].length]);
    }
  }
  let from = 0;
  let to = text.length;
  if (text.length > EXCERPT_CHARS) {
    const first = found.length > 0 ? found[0][0] : 0;
    from = Math.max(0, first - LEAD);
    if (from > 0) {
      // Start at a word: after the white space nearest before the cut.
      const space = text.slice(from, first).search(/\s/u);
      if (space >= 0) { from += space + 1; }
    }
    to = Math.min(text.length, from + EXCERPT_CHARS);
    if (to < text.length) {
      // End at a word: before the white space nearest before the cut.
      const space = text.slice(first, to).search(/\s\S*$/u);
      if (space > 0) { to = first + space; }
    }
  }
  const parts = [];
  const plain = (a, b) => { if (b > a) { parts.push({ text: text.slice(a, b), mark: false }); } };
  if (from > 0) { parts.push({ text: '…', mark: false }); }
  let at = from;
  for (const [a, b] of found) {
    if (b <= from || a >= to) { continue; }
    plain(at, Math.max(a, from));
    parts.push({ text: text.slice(Math.max(a, from), Math.min(b, to)), mark: true });
    at = Math.min(b, to);
  }
  plain(at, to);
  if (to < text.length) { parts.push({ text: '…', mark: false }); }
  return parts;
}
