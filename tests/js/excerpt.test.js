// A search result's excerpt (excerpt.js): the words found, marked, around the first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EXCERPT_CHARS, excerpt, queryWords } from '../../static/js/excerpt.js';

const marked = (parts) => parts.filter((p) => p.mark).map((p) => p.text);
const joined = (parts) => parts.map((p) => p.text).join('');

describe('a search result\'s excerpt', () => {
  it('marks every word searched for, the last as a start, without case or accents', () => {
    const words = queryWords('CAFE lun');
    assert.deepEqual(words, ['cafe', 'lun']);
    const parts = excerpt('Lunch at the Café? lunchtime, not brunch; cafeteria no', words);
    assert.equal(joined(parts), 'Lunch at the Café? lunchtime, not brunch; cafeteria no');
    assert.deepEqual(marked(parts), ['Lunch', 'Café', 'lunchtime']);
  });

  it('shows a long message around the first word found, cut at words', () => {
    const text = 'word '.repeat(60) + 'the needle is here ' + 'tail '.repeat(60);
    const parts = excerpt(text, queryWords('needle'));
    const shown = joined(parts);
    assert.ok(shown.startsWith('…word '), shown);
    assert.match(shown, /\S…$/u);  // cut after a word, not in one or after a space
    assert.ok(shown.length <= EXCERPT_CHARS + 2, shown.length);
    assert.deepEqual(marked(parts), ['needle']);
    assert.ok(shown.includes('the needle is here'));
  });

  it('keeps a short message whole and any markup as text', () => {
    const parts = excerpt('<img src=x onerror=alert(1)> hello', queryWords('hello'));
    assert.deepEqual(parts, [{ text: '<img src=x onerror=alert(1)> ', mark: false }, { text: 'hello', mark: true }]);
    assert.deepEqual(excerpt('nothing here', queryWords('zzz')), [{ text: 'nothing here', mark: false }]);
  });
});
