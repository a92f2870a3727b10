// Links, times in the reader's locale, and what notices say.
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { linkParts } from '../../static/js/links.js';
import { presenceNotice, sentence } from '../../static/js/notices.js';
import { formats } from '../../static/js/when.js';

it('cuts out http, https and bare www. links and nothing else', () => {
  const text = 'see https://example.com/a?b=1&c=2, then (http://example.org/wiki/Foo_(bar)). '
    + 'Not javascript:alert(1) ftp://x.org xwww.x.org www.nodot https:// <a href="https://evil.example">x</a>'
    + ' but www.x.org, bare.';
  const parts = linkParts(text);
  assert.equal(parts.map((part) => part.text).join(''), text);
  assert.deepEqual(parts.filter((part) => part.href).map((part) => part.href),
    ['https://example.com/a?b=1&c=2', 'http://example.org/wiki/Foo_(bar)', 'https://evil.example/',
      'https://www.x.org/']);
  assert.deepEqual(linkParts(''), []);
});

it('writes times and dates as the reader\'s locale does', () => {
  const ts = Date.UTC(2026, 10, 30, 15, 4) / 1000;
  const us = formats('en-US');
  const gb = formats('en-GB');
  const hour = new Date(ts * 1000).getHours();
  assert.match(us.clock(ts), /^\d{1,2}:04\s?(AM|PM)$/);
  assert.match(gb.clock(ts), /^\d\d:04$/);
  assert.equal(Number(gb.clock(ts).slice(0, 2)), hour);
  const day = new Date(ts * 1000).getDate();
  const later = new Date(2027, 0, 5);
  assert.match(us.dayLabel(ts, later), new RegExp(`^\\w+day, (November|December) ${day}, 2026$`));
  assert.match(gb.dayLabel(ts, later), new RegExp(`^\\w+day,? ${day} (November|December) 2026$`));
  assert.equal(gb.number(12345), '12,345');
});

it('calls today and yesterday by their names', () => {
  const gb = formats('en-GB');
  const now = new Date(2026, 5, 15, 9, 30);
  assert.equal(gb.dayLabel(new Date(2026, 5, 15, 0, 1).getTime() / 1000, now), 'Today');
  assert.equal(gb.dayLabel(new Date(2026, 5, 14, 23, 59).getTime() / 1000, now), 'Yesterday');
  assert.match(gb.dayLabel(new Date(2026, 5, 13, 12).getTime() / 1000, now), /13 June 2026/);
});

it('tells people coming together in one notice', () => {
  assert.equal(sentence(presenceNotice('join', ['a@x.org'])), 'a@x.org joined');
  assert.equal(sentence(presenceNotice('leave', ['a@x.org', 'b@x.org'])), 'a@x.org and b@x.org left');
  const three = presenceNotice('join', ['a@x.org', 'b@x.org', 'c@x.org']);
  assert.equal(sentence(three), '3 people joined');
  assert.deepEqual(three.names, ['a@x.org', 'b@x.org', 'c@x.org']);
});
