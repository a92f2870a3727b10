// The connection to the chat: one SockJS socket at a time, opened again
// whenever it drops. No DOM, no chat: frames in and out as objects.
//
// After a drop the next attempt waits 0.5 s, 1 s, 2 s, then 3 s at most
// (each +-25%, so a restarted server is not hit by every page at once);
// `retryNow()` (a button, the browser coming back online, the tab shown
// again) cuts the wait short.

import { closeWait } from './errors.js';

export const RETRY_FIRST_MS = 500;
export const RETRY_MAX_MS = 3000;

/**
 * `open()` returns a new SockJS-like socket (onopen, onmessage, onclose,
 * send, close); `timers` is {setTimeout, clearTimeout, now}; `random()` is
 * in [0, 1). `listener` hears of it all: `state(name)` with name
 * 'connecting', 'connected' or 'reconnecting'; `opened()`; `frame(object)`
 * for each frame; `closed()` when an open connection is lost; and
 * `badFrame(text)` for one that is not a JSON object.
 */
export class Connection {
  constructor({ open, timers, random = Math.random, listener }) {
    this._open = open;
    this._timers = timers;
    this._random = random;
    this._listener = listener;
    this._socket = null;
    this._isOpen = false;
    this._failures = 0;     // attempts in a row that did not open
    this._timer = null;     // the next attempt, while waiting for it
    this.state = 'connecting';
    this.retryAt = null;    // when the next attempt is due (timers.now())
  }

  /** Connect for the first time. */
  start() {
    this._connect('connecting');
  }

  /** Puts `frame` on the connection; false when there is none open. */
  send(frame) {
    if (!this._isOpen) { return false; }
    this._socket.send(JSON.stringify(frame));
    return true;
  }

  /** The SockJS transport in use ("websocket", "xhr-polling"...), or null while not connected. */
  transport() {
    return (this._isOpen && this._socket.transport) || null;
  }

  /** While waiting to connect again: connect now, and count the waits from the start. */
  retryNow() {
    if (this._timer === null) { return; }
    this._timers.clearTimeout(this._timer);
    this._timer = null;
    this._failures = 0;
    this._connect('reconnecting');
  }

  /** Drops this connection (if any) and opens a fresh one at once. */
  restart() {
    if (this._timer !== null) {
      this.retryNow();
      return;
    }
    const socket = this._socket;
    this._forget();
    if (socket !== null) { socket.close(); }
    this._connect('connecting');
  }

  _connect(state) {
    this._setState(state);
    this.retryAt = null;
    const socket = this._open();
    this._socket = socket;
    socket.onopen = () => {
      if (socket !== this._socket) { return; }
      this._isOpen = true;
      this._failures = 0;
      this._setState('connected');
      this._listener.opened();
    };
    socket.onmessage = (event) => {
      if (socket !== this._socket) { return; }
      let frame;
      try { frame = JSON.parse(event.data); } catch (err) { frame = null; }
      if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') {
        this._listener.badFrame(event.data);
        return;
      }
      this._listener.frame(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this._socket) { return; }
      const wasOpen = this._isOpen;
      this._forget();
      if (wasOpen) { this._listener.closed(); }
      this._later(event && event.code);
    };
  }

  _forget() {
    if (this._socket !== null) {
      this._socket.onopen = this._socket.onmessage = this._socket.onclose = null;
    }
    this._socket = null;
    this._isOpen = false;
  }

  // The wait before attempt number `failures` (0 first), jittered.
  _delay(code) {
    const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this._failures);
    return Math.max(closeWait(code), base * (0.75 + this._random() * 0.5));
  }

  _later(code) {
    const wait = this._delay(code);
    this._failures += 1;
    this._setState('reconnecting');
    this.retryAt = this._timers.now() + wait;
    this._timer = this._timers.setTimeout(() => {
      this._timer = null;
      this._connect('reconnecting');
    }, wait);
  }

  _setState(state) {
    this.state = state;
    this._listener.state(state);
  }
}
