// What the browser remembers of rooms (rooms.js).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MAX_VISITED, RoomMemory, wantsAttention } from '../../static/js/rooms.js';

function storage(initial = {}) {
  const kept = new Map(Object.entries(initial));
  return {
    kept,
    get: (key) => (kept.has(key) ? kept.get(key) : null),
    set: (key, value) => { if (value === null) { kept.delete(key); } else { kept.set(key, value); } },
  };
}

describe('the rooms this browser visited', () => {
  it('lists them newest first, each with the last id seen', () => {
    const rooms = new RoomMemory(storage());
    assert.deepEqual(rooms.visited(), []);
    rooms.visit('lobby');
    rooms.saw('lobby', 41);
    rooms.visit('dev');
    rooms.saw('dev', 3);
    rooms.saw('elsewhere', 9);  // never visited: not remembered
    assert.deepEqual(rooms.visited(), [{ room: 'dev', seen: 3 }, { room: 'lobby', seen: 41 }]);
    rooms.visit('lobby');
    assert.deepEqual(rooms.seen(), { lobby: 41, dev: 3 });
    assert.deepEqual(Object.keys(rooms.seen()), ['lobby', 'dev']);
  });

  it('keeps the newest twenty, the server\'s most', () => {
    const rooms = new RoomMemory(storage());
    for (let i = 0; i < MAX_VISITED + 5; i += 1) { rooms.visit('room-' + i); }
    const visited = rooms.visited();
    assert.equal(visited.length, MAX_VISITED);
    assert.equal(visited[0].room, 'room-' + (MAX_VISITED + 4));
  });

  it('drops what is not a room from a broken or hand-edited memory', () => {
    assert.deepEqual(new RoomMemory(storage({ 'chatzilla.rooms': '{not json' })).visited(), []);
    assert.deepEqual(new RoomMemory(storage({ 'chatzilla.rooms': '{"room": "x"}' })).visited(), []);
    const odd = JSON.stringify([{ room: 'Dev Room', seen: 1 }, { room: 'ok', seen: -4 }, null,
      { room: 'ok', seen: 2 }, { room: '<b>x</b>' }, { room: 'fine', seen: 1.5 }]);
    assert.deepEqual(new RoomMemory(storage({ 'chatzilla.rooms': odd })).visited(),
      [{ room: 'ok', seen: 0 }, { room: 'fine', seen: 0 }]);
  });

  it('remembers how each room asks for attention, every message by default', () => {
    const kept = storage();
    const rooms = new RoomMemory(kept);
    assert.equal(rooms.mode('dev'), 'all');
    rooms.setMode('dev', 'mentions');
    rooms.setMode('lobby', 'none');
    rooms.setMode('lobby', 'loud');  // not a mode: nothing changes
    assert.equal(new RoomMemory(kept).mode('dev'), 'mentions');
    assert.equal(rooms.mode('lobby'), 'none');
    rooms.setMode('dev', 'all');
    assert.equal(kept.get('chatzilla.mode.dev'), null);  // the default is not stored
  });

  it('asks for attention as the mode says; a mention even in "mentions"', () => {
    assert.equal(wantsAttention('all', false), true);
    assert.equal(wantsAttention('mentions', false), false);
    assert.equal(wantsAttention('mentions', true), true);
    assert.equal(wantsAttention('none', true), false);
  });
});
