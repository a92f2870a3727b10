// A small Markdown subset, as a tree of plain objects: no DOM, no HTML.
// The view builds elements from it with createElement and text nodes.
//
// Blocks: fenced code (``` lines; kept exactly, monospace), block quotes
// (lines starting with ">"), and the rest as text. Inline, in text and
// quotes: `code` (kept exactly), **strong**, *emphasis*, and links
// (links.js: http, https, bare www.), and mentions: "@" and the name of
// someone the page knows. What is not markup stays as typed, so a lone "*"
// or an unclosed "`" is just a character.

import { linkParts } from './links.js';

const FENCE = /^```/;
const QUOTE = /^> ?/;
// **strong** or *emphasis*: no space just inside the stars.
const EMPHASIS = /\*\*(?=\S)([\s\S]*?\S)\*\*|\*(?=[^\s*])([\s\S]*?[^\s*])\*/;
const CODE = /`([^`\n]+)`/;

/**
 * `text` as blocks: {type: 'code', text}, {type: 'quote', inline},
 * {type: 'text', inline}, where `inline` is a list of {text}, {code},
 * {strong: inline}, {em: inline}, {link, href} and {mention, name} (an
 * "@" and one of `names`, longest first, in any case). Line breaks stay in
 * the text (the view keeps white space).
 */
export function blocks(text, names = []) {
  const mentions = mentionPattern(names);
  const lines = text.split('\n');
  const out = [];
  let i = 0;
  let plain = [];
  const flush = () => {
    if (plain.length > 0) { out.push({ type: 'text', inline: inline(plain.join('\n'), mentions) }); }
    plain = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const end = lines.findIndex((l, j) => j > i && FENCE.test(l));
      if (end > i) {
        flush();
        out.push({ type: 'code', text: lines.slice(i + 1, end).join('\n') });
        i = end + 1;
        continue;
      }
    }
    if (QUOTE.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) { quoted.push(lines[i].replace(QUOTE, '')); i += 1; }
      out.push({ type: 'quote', inline: inline(quoted.join('\n'), mentions) });
      continue;
    }
    plain.push(line);
    i += 1;
  }
  flush();
  return out;
}

// The last names asked for and their pattern: every message of a room is
// shown with the same names (its people), so the pattern is built once.
let lastNames = null;
let lastPattern = null;

/** The pattern of "@" and one of `names` (null for none), for inline. */
export function mentionPattern(names) {
  const key = names.join('\u0000');
  if (key !== lastNames) {
    lastPattern = buildPattern(names);
    lastNames = key;
  }
  return lastPattern;
}

function buildPattern(names) {
  const known = [...new Set(names.filter(Boolean))].sort((a, b) => b.length - a.length);
  if (known.length === 0) { return null; }
  const escaped = known.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // Not inside a word or an address (x@Alice), nor followed by more of a word.
  return new RegExp('(?<![\\p{L}\\p{N}_@])@(' + escaped.join('|') + ')(?![\\p{L}\\p{N}_])', 'iu');
}

/** Inline markup of `text` (see blocks); `mentions` from mentionPattern. */
export function inline(text, mentions = null) {
  const out = [];
  let rest = text;
  let match;
  while ((match = CODE.exec(rest)) !== null) {
    out.push(...emphasis(rest.slice(0, match.index), mentions));
    out.push({ code: match[1] });
    rest = rest.slice(match.index + match[0].length);
  }
  out.push(...emphasis(rest, mentions));
  return out;
}

// Mentions in plain text.
function mentioned(text, mentions) {
  if (mentions === null) { return text ? [{ text }] : []; }
  const out = [];
  let rest = text;
  let match;
  while ((match = mentions.exec(rest)) !== null) {
    if (match.index > 0) { out.push({ text: rest.slice(0, match.index) }); }
    out.push({ mention: match[0], name: match[1] });
    rest = rest.slice(match.index + match[0].length);
  }
  if (rest) { out.push({ text: rest }); }
  return out;
}

// Links first (a URL's own "*" or "_" is no markup), then emphasis in
// the text between them.
function emphasis(text, mentions = null) {
  const out = [];
  for (const part of linkParts(text)) {
    if (part.href) {
      out.push({ link: part.text, href: part.href });
      continue;
    }
    let rest = part.text;
    let match;
    while ((match = EMPHASIS.exec(rest)) !== null) {
      if (match.index > 0) { out.push(...mentioned(rest.slice(0, match.index), mentions)); }
      out.push(match[1] !== undefined
        ? { strong: emphasis(match[1], mentions) } : { em: emphasis(match[2], mentions) });
      rest = rest.slice(match.index + match[0].length);
    }
    out.push(...mentioned(rest, mentions));
  }
  return out;
}
