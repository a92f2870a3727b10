// What this browser remembers of rooms, in localStorage: the rooms it
// visited, newest first, each with the id of the last message seen there,
// and how each room asks for attention. No DOM.

const VISITED = 'chatzilla.rooms';
const MODE = 'chatzilla.mode.';
/** Rooms remembered (and asked about in a `rooms` frame: the server takes 20). */
export const MAX_VISITED = 20;
/** How a room asks for attention while its tab is hidden. */
export const MODES = ['all', 'mentions', 'none'];
const ROOM = /^[a-z0-9_-]{1,64}$/;

/**
 * `memory` is {get(key), set(key, value)} over localStorage (null: remove).
 * Whatever it holds is checked: a hand-edited or broken entry is dropped.
 */
export class RoomMemory {
  constructor(memory) {
    this._memory = memory;
  }

  /** The visited rooms, newest first: [{room, seen}]. */
  visited() {
    let stored;
    try {
      stored = JSON.parse(this._memory.get(VISITED) || '[]');
    } catch (err) {
      return [];
    }
    if (!Array.isArray(stored)) { return []; }
    const rooms = [];
    for (const entry of stored) {
      if (entry && typeof entry.room === 'string' && ROOM.test(entry.room) &&
          !rooms.some((r) => r.room === entry.room)) {
        rooms.push({ room: entry.room, seen: Number.isSafeInteger(entry.seen) && entry.seen > 0 ? entry.seen : 0 });
      }
    }
    return rooms.slice(0, MAX_VISITED);
  }

  /** `room` was opened: first in the list, its last seen id kept. */
  visit(room) {
    const rooms = this.visited();
    const found = rooms.find((r) => r.room === room) || { room, seen: 0 };
    this._keep([found, ...rooms.filter((r) => r.room !== room)]);
  }

  /** Messages of `room` up to `id` were seen (an id only grows, but for a room started again). */
  saw(room, id) {
    if (!Number.isSafeInteger(id) || id <= 0) { return; }
    const rooms = this.visited();
    const found = rooms.find((r) => r.room === room);
    if (found === undefined || found.seen === id) { return; }
    found.seen = id;
    this._keep(rooms);
  }

  /** The `seen` of a `rooms` frame: {room: last id seen}. */
  seen() {
    const seen = {};
    for (const { room, seen: id } of this.visited()) { seen[room] = id; }
    return seen;
  }

  /** How `room` asks for attention: 'all' (the default), 'mentions' or 'none'. */
  mode(room) {
    const mode = this._memory.get(MODE + room);
    return MODES.includes(mode) ? mode : 'all';
  }

  setMode(room, mode) {
    if (!MODES.includes(mode)) { return; }
    this._memory.set(MODE + room, mode === 'all' ? null : mode);
  }

  _keep(rooms) {
    this._memory.set(VISITED, JSON.stringify(rooms.slice(0, MAX_VISITED)));
  }
}

/**
 * Whether a message shown while the tab is hidden asks for attention (the
 * title's count, a desktop notification) in a room of `mode`:
 * 'all' every message from others, 'mentions' those that mention the
 * reader, 'none' never.
 */
export function wantsAttention(mode, mentionsMe) {
  return mode === 'all' || (mode === 'mentions' && mentionsMe);
}
