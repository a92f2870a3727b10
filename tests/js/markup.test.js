// The Markdown subset, as plain objects (no DOM).
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { blocks, inline } from '../../static/js/markup.js';

it('marks up emphasis, strong, code and links, and leaves the rest as typed', () => {
  assert.deepEqual(inline('a *b* **c** `d *e*` www.example.com'), [
    { text: 'a ' }, { em: [{ text: 'b' }] }, { text: ' ' }, { strong: [{ text: 'c' }] }, { text: ' ' },
    { code: 'd *e*' }, { text: ' ' }, { link: 'www.example.com', href: 'https://www.example.com/' },
  ]);
  assert.deepEqual(inline('**bold *and em* too**'),
    [{ strong: [{ text: 'bold ' }, { em: [{ text: 'and em' }] }, { text: ' too' }] }]);
  // Not markup: a lone star, stars with space inside, an unclosed backtick.
  for (const text of ['2 * 3 = 6', '* not em *', 'an ` alone', '**', 'x*']) {
    assert.deepEqual(inline(text), [{ text }], text);
  }
  // A URL's own star or underscore is no markup.
  assert.deepEqual(inline('https://x.org/a*b*c'), [{ link: 'https://x.org/a*b*c', href: 'https://x.org/a*b*c' }]);
  // HTML is text.
  assert.deepEqual(inline('<b>*x*</b>'), [{ text: '<b>' }, { em: [{ text: 'x' }] }, { text: '</b>' }]);
});

it('keeps fenced code exactly, and quotes lines that start with >', () => {
  const text = 'look:\n```\n  if (a < b) {\n    *not em*\n  }\n```\n> quoted *em*\n>more\nafter';
  assert.deepEqual(blocks(text), [
    { type: 'text', inline: [{ text: 'look:' }] },
    { type: 'code', text: '  if (a < b) {\n    *not em*\n  }' },
    { type: 'quote', inline: [{ text: 'quoted ' }, { em: [{ text: 'em' }] }, { text: '\nmore' }] },
    { type: 'text', inline: [{ text: 'after' }] },
  ]);
  // An unclosed fence is text.
  assert.deepEqual(blocks('```\nno end'), [{ type: 'text', inline: [{ text: '```\nno end' }] }]);
  assert.deepEqual(blocks('plain'), [{ type: 'text', inline: [{ text: 'plain' }] }]);
});

it('marks "@" and a known name as a mention, the longest name first, in any case', () => {
  const names = ['Alice', 'Alice Smith', 'bob@example.com'];
  assert.deepEqual(blocks('hi @alice smith and @Alice, *@bob@example.com* x@Alice @Alicea', names), [{
    type: 'text',
    inline: [
      { text: 'hi ' }, { mention: '@alice smith', name: 'alice smith' }, { text: ' and ' },
      { mention: '@Alice', name: 'Alice' }, { text: ', ' },
      { em: [{ mention: '@bob@example.com', name: 'bob@example.com' }] },
      { text: ' x@Alice @Alicea' },
    ],
  }]);
  assert.deepEqual(blocks('@nobody `@Alice`', names),
    [{ type: 'text', inline: [{ text: '@nobody ' }, { code: '@Alice' }] }]);
  assert.deepEqual(blocks('@Alice'), [{ type: 'text', inline: [{ text: '@Alice' }] }]);  // no names known
});
