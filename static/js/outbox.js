// The messages typed and not acknowledged yet, oldest first. No DOM.
//
// Each message has a ref of its own, unique per page load. Whatever was not
// acknowledged goes again, with the same ref, after every rejoin: the server
// acknowledges a ref it already stored with the first id instead of storing
// it twice. One message is in flight at a time: the next goes when the one
// before is acknowledged or refused for good. A message refused for now (too
// fast, the server busy) waits `seconds`, and the ones typed after it wait
// too. Sending them all at once would not keep them in order: under flood
// control the server refuses the first few past the limit and may take a
// later one that arrives once a token is back, before they come again.

/**
 * `send(frame)` puts a frame on the connection; `timers` is
 * {setTimeout, clearTimeout}; refs are `prefix` and a counter.
 */
export class Outbox {
  constructor({ send, timers, prefix }) {
    this._send = send;
    this._timers = timers;
    this._prefix = prefix;
    this._counter = 0;
    // ref -> {ref, content, fields, note, state: 'waiting' | 'sent', tries}
    this._entries = new Map();
    this._open = false;    // joined: frames may go
    this._timer = null;    // the end of a "not now" wait
  }

  get size() { return this._entries.size; }

  has(ref) { return this._entries.has(ref); }

  /** How many times the server refused `ref` for now so far (0 if unknown). */
  tries(ref) {
    const entry = this._entries.get(ref);
    return entry === undefined ? 0 : entry.tries;
  }

  /**
   * A new message, with more `fields` for its frame (`reply_to`) and a
   * `note` kept with it for whoever acknowledges it; returns its ref. It
   * goes at once when it can.
   */
  add(content, fields = null, note = null) {
    this._counter += 1;
    const ref = this._prefix + this._counter;
    this._entries.set(ref, { ref, content, fields, note, state: 'waiting', tries: 0 });
    this._flush();
    return ref;
  }

  /** Joined (again): everything not acknowledged goes (again), in order. */
  open() {
    this._open = true;
    this._entries.forEach((entry) => { entry.state = 'waiting'; });
    this._flush();
  }

  /** The connection is gone: what was in flight goes again after the rejoin. */
  close() {
    this._open = false;
  }

  /** The server acknowledged `ref`: returns its entry, or undefined if unknown. */
  acknowledged(ref) {
    const entry = this._entries.get(ref);
    if (entry === undefined) { return undefined; }
    this._entries.delete(ref);
    this._flush();
    return entry;
  }

  /**
   * The server refused `ref` for now: it goes again after `seconds`, and
   * what was typed after it waits too. Returns its entry, or undefined.
   */
  later(ref, seconds) {
    const entry = this._entries.get(ref);
    if (entry === undefined) { return undefined; }
    entry.state = 'waiting';
    entry.tries += 1;
    if (this._timer !== null) { this._timers.clearTimeout(this._timer); }
    this._timer = this._timers.setTimeout(() => {
      this._timer = null;
      this._flush();
    }, seconds * 1000);
    return entry;
  }

  /** The server refused `ref` for good: returns its entry (now forgotten). */
  refused(ref) {
    const entry = this._entries.get(ref);
    if (entry === undefined) { return undefined; }
    this._entries.delete(ref);
    this._flush();
    return entry;
  }

  /** Forgets everything, timers included: the conversation is over. */
  dispose() {
    if (this._timer !== null) { this._timers.clearTimeout(this._timer); }
    this._timer = null;
    this._entries.clear();
    this._open = false;
  }

  // Sends the oldest message, the one to go next (one in flight at a time),
  // unless it is in flight already, the connection is closed or a wait runs.
  _flush() {
    if (!this._open || this._timer !== null) { return; }
    const [entry] = this._entries.values();
    if (entry === undefined || entry.state === 'sent') { return; }
    entry.state = 'sent';
    // The ref last: a frame refused unread echoes it from its end.
    this._send({ type: 'message', content: entry.content, ...entry.fields, ref: entry.ref });
  }
}
