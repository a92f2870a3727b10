// The Rooms panel: the rooms this browser visited, each with how many
// messages came since it was last seen there, the active public rooms, and
// how this room asks for attention (all messages, mentions, nothing).
// Room names go in as text only.

import { MODES } from '../rooms.js';

const MODE_NOTES = { mentions: 'mentions only', none: 'muted' };

/**
 * `el`: {visited, active, activeTitle, mode}; `memory` a RoomMemory
 * (rooms.js); `room` the page's own room; `formats` (when.js).
 */
export class RoomsPanel {
  constructor(el, memory, room, formats) {
    this._el = el;
    this._memory = memory;
    this._room = room;
    this._formats = formats;
    this._counts = new Map();  // room -> unread, from the server's last answer
    this._active = [];
    el.mode.value = memory.mode(room);
    el.mode.addEventListener('change', () => {
      if (!MODES.includes(el.mode.value)) { return; }
      memory.setMode(room, el.mode.value);
      this.render();
    });
    this.render();
  }

  /** How this room asks for attention now. */
  mode() { return this._memory.mode(this._room); }

  /** The server's `rooms` frame. */
  answered({ rooms, active }) {
    this._counts = new Map((rooms || []).map((r) => [r.room, r.unread]));
    this._active = active || [];
    this.render();
  }

  render() {
    const visited = this._memory.visited();
    this._el.visited.replaceChildren(...visited.map(({ room }) => this._item(room, this._counts.get(room))));
    const known = new Set(visited.map((r) => r.room));
    const others = this._active.filter((r) => !known.has(r.room));
    this._el.active.replaceChildren(...others.map((r) => this._item(r.room, undefined, r.ts)));
    this._el.activeTitle.hidden = others.length === 0;
  }

  _item(room, unread, ts) {
    const item = document.createElement('li');
    item.className = 'room-item';
    const link = document.createElement('a');
    link.href = '/r/' + encodeURIComponent(room);
    link.className = 'room-link';
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = room;
    link.appendChild(name);
    if (room === this._room) {
      link.setAttribute('aria-current', 'page');
      link.append(this._hidden(' (this room)'));
    } else if (unread > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge unread';
      badge.textContent = unread >= 100 ? '99+' : this._formats.number(unread);
      link.append(' ', badge, this._hidden(unread === 1 ? ' unread message' : ' unread messages'));
    }
    const mode = this._memory.mode(room);
    if (MODE_NOTES[mode]) {
      const note = document.createElement('span');
      note.className = 'room-mode';
      note.textContent = MODE_NOTES[mode];
      link.append(' ', note);
    }
    if (ts !== undefined) {
      const time = document.createElement('time');
      time.className = 'room-time';
      time.dateTime = new Date(ts * 1000).toISOString();
      time.title = this._formats.longTime(ts);
      time.textContent = 'last message ' + this._formats.clock(ts);
      link.append(' ', time);
    }
    item.appendChild(link);
    return item;
  }

  _hidden(text) {
    const span = document.createElement('span');
    span.className = 'visually-hidden';
    span.textContent = text;
    return span;
  }
}
