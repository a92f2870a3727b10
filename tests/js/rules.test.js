// The server's rules as the page applies them before sending.
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { EXCERPT, checkMessage, length, quoteOf, roomPath, shortened, trimmed } from '../../static/js/rules.js';

it('trims what the server trims, and only that', () => {
  // protocol._BLANK: Python's white space, without U+001C..U+001F.
  assert.equal(trimmed('\u0085\u00a0\u2007\u3000 a b\t\n\u2029'), 'a b');
  assert.equal(trimmed('\ufeffa\u001c'), '\ufeffa\u001c');
});

it('counts characters as the server does', () => {
  assert.equal(length('abc'), 3);
  assert.equal(length('\u{1F600}\u{1F600}'), 2);
  assert.equal(length('\ud800x'), 2);  // a lone surrogate is one
  assert.equal(length('\u05e9\u05dc\u05d5\u05dd'), 4);
});

it('says what the server would refuse a message for', () => {
  assert.deepEqual(checkMessage('  hi ', 2), { content: 'hi', length: 2, problem: null });
  assert.equal(checkMessage(' \n ', 2).problem, 'empty');
  assert.equal(checkMessage('hey', 2).problem, 'too_long');
});

it('finds a room whatever the case it is typed in', () => {
  assert.equal(roomPath('Dev'), '/r/dev');
  assert.equal(roomPath(' dev-team_2 '), '/r/dev-team_2');
  assert.equal(roomPath('LOBBY'), '/');
  for (const bad of ['', 'a b', 'caf\u00e9', 'a/b', 'x'.repeat(65)]) {
    assert.equal(roomPath(bad), null, bad);
  }
});

it('quotes the start of a message on one line, as the server does (chat.quote_of)', () => {
  assert.equal(quoteOf('first line\n\n  second\tline'), 'first line second line');
  const cut = quoteOf('word '.repeat(60));
  assert.ok(cut.endsWith('…') && !cut.endsWith(' …') && length(cut) <= EXCERPT);
  assert.equal(quoteOf('\u{1F600}'.repeat(500)), '\u{1F600}'.repeat(EXCERPT - 1) + '…');
});

it('shortens text without splitting an emoji (a notification\'s body)', () => {
  assert.equal(shortened('short', 140), 'short');
  assert.equal(shortened('\u{1F600}'.repeat(140), 140), '\u{1F600}'.repeat(140));  // 280 UTF-16 units, not cut
  // Cut by UTF-16 units (String.slice), the 139th would be half an emoji.
  const long = 'ab' + '\u{1F600}'.repeat(200);
  assert.equal(shortened(long, 140), 'ab' + '\u{1F600}'.repeat(137) + '…');
  assert.ok(/[\uD800-\uDBFF]$/.test(long.slice(0, 139)));
});
