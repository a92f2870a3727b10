// Test doubles for the page's seams (not of the modules under test): a
// clock whose time moves only when told, a socket standing in for
// sockjs-client's, and a view that records what it was asked to show.

/** setTimeout, clearTimeout and now() on a clock that `advance(ms)` moves. */
export class Clock {
  constructor(start = 1000) {
    this.time = start;
    this._timers = new Map();
    this._next = 1;
    this.setTimeout = (fn, ms) => {
      const id = this._next++;
      this._timers.set(id, { at: this.time + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => { this._timers.delete(id); };
    this.now = () => this.time;
  }

  /** Moves time on by `ms`, running each timer due on the way, in order. */
  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this._timers) {
        if (timer.at <= end && (due === null || timer.at < due[1].at)) { due = [id, timer]; }
      }
      if (due === null) { break; }
      this._timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = end;
  }

  /** Milliseconds until the next timer, or null. */
  nextIn() {
    let at = null;
    for (const timer of this._timers.values()) { at = at === null ? timer.at : Math.min(at, timer.at); }
    return at === null ? null : at - this.time;
  }

  get pending() { return this._timers.size; }
}

/** A socket as sockjs-client's looks to the page; the test opens and closes it. */
export class FakeSocket {
  constructor() {
    this.sent = [];
    this.closed = false;
    this.onopen = this.onmessage = this.onclose = null;
  }

  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.closed = true; }
  // What the server side does:
  open() { this.onopen(); }
  receive(frame) { this.onmessage({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) }); }
  drop(code = 1006) { this.onclose({ code }); }
}

/** Records every call made on it: `calls` is a list of [method, ...args]. */
export function recorder() {
  const calls = [];
  const target = { calls, named: (name) => calls.filter((call) => call[0] === name) };
  return new Proxy(target, {
    get(obj, name) {
      if (name in obj) { return obj[name]; }
      return (...args) => { calls.push([name, ...args]); };
    },
  });
}
