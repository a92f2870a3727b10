// What the page does about each `error` frame and each close of the
// connection: the one table to change when the server learns a new refusal.
// No DOM. docs/protocol.md lists the codes.

// The page does one of these about a refused frame:
//   retry:   send it again later (after `retry_after`, else a second);
//   refuse:  refused for good: the message is shown as not sent, with the reason;
//   address: the join was refused for who it says it is: back to the join
//            form (protocol 1) or to signing in (protocol 2);
//   stop:    nothing the page can do about it: say so and send it no more;
//   reconnect: the connection is not in the state the page thought: a new one;
//   show:    say so (what it answers is unknown);
//   ignore:  nothing to tell.
// By what the error answers: one of the page's messages, its join, its
// request for older messages, or anything else (a `typing`, a frame whose
// ref is not known).
export const ON_ERROR = Object.freeze({
  bad_frame: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  invalid_email: { message: 'refuse', join: 'address', history: 'stop', other: 'show' },
  // Protocol 2: the join had no valid session or bot token: sign in again.
  sign_in_required: { message: 'refuse', join: 'address', history: 'stop', other: 'show' },
  invalid_token: { message: 'refuse', join: 'address', history: 'stop', other: 'show' },
  invalid_room: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  // The page left before joining: its leave did not reach the server.
  already_joined: { message: 'ignore', join: 'reconnect', history: 'ignore', other: 'ignore' },
  // Sent while the server had not seen the join yet: the join sends it again.
  not_joined: { message: 'retry', join: 'retry', history: 'retry', other: 'ignore' },
  empty: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  too_long: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  too_large: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  // Not now: nothing was carried out, the same frame is welcome later.
  rate_limited: { message: 'retry', join: 'retry', history: 'retry', other: 'ignore' },
  unavailable: { message: 'retry', join: 'retry', history: 'retry', other: 'show' },
  // Perhaps stored: the same ref again is safe (acknowledged once, if it was);
  // its sent may also come by itself.
  outcome_unknown: { message: 'retry', join: 'retry', history: 'retry', other: 'show' },
  // An edit or delete of a message that is gone, or someone else's.
  not_found: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  not_yours: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  // A search the server cannot do (no words; no index where it keeps messages).
  invalid_query: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  search_unavailable: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  // A reaction that is no emoji, or one too many different ones.
  invalid_emoji: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  too_many_reactions: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  too_many_rooms: { message: 'refuse', join: 'retry', history: 'stop', other: 'show' },
  // May or may not have happened: a message goes again with its ref (safe).
  internal: { message: 'retry', join: 'retry', history: 'retry', other: 'show' },
  // Moderation (protocol 2): the reason says for how long and why.
  muted: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  banned: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  not_allowed: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  unknown_person: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  not_invited: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  invalid_invite: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  too_many_reports: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
  read_only: { message: 'refuse', join: 'stop', history: 'stop', other: 'show' },
});

// A code this page does not know yet.
const UNKNOWN = Object.freeze({ message: 'refuse', join: 'retry', history: 'stop', other: 'show' });

/** What to do about error `code` answering `target` (message, join, history, other). */
export function onError(code, target) {
  const row = Object.prototype.hasOwnProperty.call(ON_ERROR, code) ? ON_ERROR[code] : UNKNOWN;
  return row[target];
}

/** Seconds to wait before sending again what `frame` refused for now. */
export function retryAfter(frame, tries = 1) {
  const named = Number(frame.retry_after);
  if (frame.code === 'rate_limited' && named > 0) { return Math.max(0.05, named); }
  // Longer each time the same frame is refused, up to ten seconds.
  return Math.min(10, 2 ** Math.max(0, tries - 1));
}

// SockJS close codes the server uses, and the least wait before the next
// connection after each: a page that was told it has too many connections
// should not come straight back.
export const ON_CLOSE = Object.freeze({
  3001: { reason: 'the server is restarting', atLeastMs: 0 },
  4008: { reason: 'the connection was too slow', atLeastMs: 0 },
  4009: { reason: 'a frame was too large', atLeastMs: 0 },
  4029: { reason: 'too many connections or frames from this address', atLeastMs: 10000 },
  // Banned: the next join says why, and the page stops there.
  4403: { reason: 'banned from this room', atLeastMs: 0 },
});

/** The least milliseconds to wait before connecting again after close `code`. */
export function closeWait(code) {
  const row = ON_CLOSE[code];
  return row ? row.atLeastMs : 0;
}
