// What a notice of people coming and going says. Consecutive notices of
// one kind are told together: "carol@example.com and dave@example.com
// joined", "3 people left". No DOM.

const VERBS = { join: 'joined', leave: 'left' };

/**
 * The words of a notice that `names` (in the order they came, each once)
 * did `event` ("join" or "leave"): {names, subject, verb}, where `subject`
 * is either the list of names (one or two) or "N people".
 */
export function presenceNotice(event, names) {
  const verb = VERBS[event] || event;
  if (names.length <= 2) { return { names: names.slice(), subject: null, verb }; }
  return { names: names.slice(), subject: names.length + ' people', verb };
}

/** The whole sentence, for a tooltip or a test: "a and b joined". */
export function sentence(notice) {
  const subject = notice.subject || notice.names.join(' and ');
  return subject + ' ' + notice.verb;
}

/** `names` with `name` added at the end, unless it is there already. */
export function withName(names, name) {
  return names.includes(name) ? names.slice() : names.concat([name]);
}

// -- moderation ------------------------------------------------------------------

/** A sanction's length for people: "10 min", "2 h", "3 d", or "until lifted" (until null). */
export function howLong(ts, until) {
  if (until === null || until === undefined) { return 'until lifted'; }
  const minutes = Math.max(1, Math.round((until - ts) / 60));
  if (minutes % 1440 === 0) { return 'for ' + minutes / 1440 + ' d'; }
  if (minutes % 60 === 0) { return 'for ' + minutes / 60 + ' h'; }
  return 'for ' + minutes + ' min';
}

/** A room's rules in words: "private, read-only, topic: Team room". */
export function rulesWords(rules) {
  const parts = [rules.private ? 'private' : 'public', rules.read_only ? 'read-only' : 'open to all to speak'];
  if (rules.topic) { parts.push('topic: ' + rules.topic); }
  return parts.join(', ');
}

const ROLE_NAMES = { owner: 'the owner', moderator: 'a moderator' };

/**
 * The sentence of a `moderated` frame (docs/protocol.md), its people as
 * names (`person` and `by` are what `nameOf` makes of the frame's people):
 * "Alice muted Bob for 10 min: spam".
 */
export function moderationNotice(frame, person, by) {
  const why = frame.reason ? ': ' + frame.reason : '';
  switch (frame.action) {
    case 'claim': return person + ' owns this room now';
    case 'grant': return by + ' made ' + person + ' ' + (ROLE_NAMES[frame.role] || frame.role);
    case 'revoke': return by + ' removed ' + person + ' as ' + frame.role + why;
    case 'mute': return by + ' muted ' + person + ' ' + howLong(frame.ts, frame.until) + why;
    case 'unmute': return by + ' lifted ' + person + "'s mute" + why;
    case 'ban': return by + ' banned ' + person + ' ' + howLong(frame.ts, frame.until) + why;
    case 'unban': return by + ' lifted ' + person + "'s ban" + why;
    case 'rules': return by + ' set the room ' + rulesWords(frame.rules || {});
    case 'invite':
      // Followed an invitation link: `by` made it.
      if (frame.link) { return person + ' came in with ' + (by === 'you' ? 'your' : by + "'s") + ' invitation link'; }
      return by + ' invited ' + person + why;
    case 'uninvite': return by + ' withdrew the invitation of ' + person + why;
    case 'delete':
      return by + ' deleted ' + (person === 'you' ? 'a message of yours' : 'a message of ' + person) + why;
    default: return by + ' moderated ' + person + why;
  }
}
