// Who the people in frames are. No DOM.
//
// Under protocol 1 (`--auth open`) everyone is their address. Under
// protocol 2 (`--auth link`) frames carry people as {id, name, avatar} and
// never an address. The page keys everyone by one string either way (the
// address, or the public id) and keeps here what protocol 2 says of each
// id, so the rest of the page handles both alike.

export class Directory {
  constructor() {
    this._people = new Map();  // id -> {id, name, avatar}
  }

  /** The key of `who`: an address as it is, a person by its id (remembered). */
  key(who) {
    if (who !== null && typeof who === 'object') {
      const id = String(who.id);
      this._people.set(id, {
        id,
        name: String(who.name || 'someone'),
        avatar: typeof who.avatar === 'string' ? who.avatar : '',
      });
      return id;
    }
    return String(who);
  }

  /** The name to show for `key`: a person's name, else the key itself (an address). */
  name(key) {
    const person = this._people.get(key);
    return person ? person.name : String(key);
  }

  /** What protocol 2 said of `key`, or null (an address, or nobody known). */
  person(key) {
    return this._people.get(key) || null;
  }

  /** `frame` with its people as keys, in protocol 1's fields. */
  normalize(frame) {
    const reactions = (list) => list.map((r) => ({ ...r, people: (r.people || []).map((p) => this.key(p)) }));
    const message = (m) => {
      if (!m || typeof m.sender !== 'object') { return m; }
      const keyed = { ...m, sender: this.key(m.sender) };
      if (Array.isArray(m.reactions)) { keyed.reactions = reactions(m.reactions); }
      if (m.reply && m.reply.sender) { keyed.reply = { ...m.reply, sender: this.key(m.reply.sender) }; }
      return keyed;
    };
    switch (frame.type) {
      case 'joined':
        if (frame.you === undefined) { return frame; }
        return {
          ...frame,
          email: this.key(frame.you),
          participants: (frame.participants || []).map((p) => this.key(p)),
          history: (frame.history || []).map(message),
          ...(frame.changes === undefined ? {} : { changes: frame.changes.map(message) }),
        };
      case 'presence':
        // Several changes of one moment share a frame (docs/protocol.md).
        if (Array.isArray(frame.changes)) { return { ...frame, changes: frame.changes.map((c) => this.normalize({ ...c, type: 'presence' })) }; }
        return frame.person === undefined ? frame : { ...frame, email: this.key(frame.person) };
      case 'participants':
        return { ...frame, people: (frame.people || []).map((p) => this.key(p)) };
      case 'typing':
        return frame.person === undefined ? frame : { ...frame, email: this.key(frame.person) };
      case 'message':
      case 'changed':
        return message(frame);
      case 'moderated':
        return frame.person === undefined ? frame : { ...frame, person: this.key(frame.person), by: this.key(frame.by) };
      case 'history':
      case 'changes':
      case 'search':
        return { ...frame, messages: (frame.messages || []).map(message) };
      default:
        return frame;
    }
  }
}
