// The one table of what the page does about each error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';

import { ON_ERROR, onError, retryAfter } from '../../static/js/errors.js';

const TARGETS = ['message', 'join', 'history', 'other'];
const ACTIONS = new Set(['retry', 'refuse', 'address', 'stop', 'reconnect', 'show', 'ignore']);

it('has a row for every error code the protocol documents', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const codes = new Set([...doc.matchAll(/^\| `([a-z_]+)` \|/gm)].map((match) => match[1]));
  assert.ok(codes.size >= 12, [...codes].join());
  for (const code of codes) { assert.ok(code in ON_ERROR, code); }
  for (const [code, row] of Object.entries(ON_ERROR)) {
    assert.deepEqual(Object.keys(row).sort(), [...TARGETS].sort(), code);
    for (const action of Object.values(row)) { assert.ok(ACTIONS.has(action), code); }
  }
});

it('handles a code it does not know', () => {
  assert.equal(onError('brand_new', 'message'), 'refuse');
  assert.equal(onError('brand_new', 'join'), 'retry');
  assert.equal(onError('toString', 'other'), 'show');
});

it('waits as long as the server says, else longer each time', () => {
  assert.equal(retryAfter({ code: 'rate_limited', retry_after: 0.2 }), 0.2);
  assert.equal(retryAfter({ code: 'unavailable' }, 1), 1);
  assert.equal(retryAfter({ code: 'unavailable' }, 3), 4);
  assert.equal(retryAfter({ code: 'internal' }, 30), 10);
});
