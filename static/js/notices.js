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
