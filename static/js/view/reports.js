// The moderators' reports panel: the open reports of the room, each with
// who reported whose message and why, the message with the ones around it,
// and Resolve. Shown to the room's moderators, owner and admins alone. Text
// is inserted as text, never HTML.

/**
 * `el` holds the panel's elements (see main.js); `avatars` writes names;
 * `actions` is {load(), resolve(report)}, each null when on its way, else
 * a reason it is not.
 */
export class ReportsPanel {
  constructor(el, avatars, actions) {
    this._el = el;
    this._avatars = avatars;
    this._actions = actions;
    this._open = new Map();  // report number -> its <li>
    this._unseen = 0;
    el.load.addEventListener('click', () => this._actions.load());
  }

  /** Whether this person sees the panel (a moderator here); hiding empties it. */
  show(visible) {
    this._el.panel.hidden = !visible;
    if (!visible) { this.list([]); }
  }

  /** The open reports, as a `reports` frame lists them (people as keys). */
  list(reports) {
    this._open.clear();
    this._el.list.replaceChildren();
    this._unseen = 0;
    for (const report of reports) { this._add(report); }
    this._count();
  }

  /** A `report` frame: a new report, or one resolved. */
  live(frame) {
    if (frame.resolved) {
      this._open.get(frame.report)?.remove();
      this._open.delete(frame.report);
    } else if (!this._open.has(frame.report)) {
      this._unseen += 1;
      this._add(frame);
    }
    this._count();
  }

  _add(report) {
    const item = document.createElement('li');
    item.className = 'report';
    item.dataset.report = String(report.report);
    const who = document.createElement('p');
    who.append(this._name(report.by), ' reported ', this._name(report.person));
    if (report.reason) { who.append(': ' + report.reason); }
    item.append(who);
    const context = report.context || [];
    if (context.length) {
      const quote = document.createElement('ol');
      quote.className = 'report-context';
      for (const message of context) {
        const line = document.createElement('li');
        if (message.id === report.message) { line.className = 'reported'; }
        line.append(this._name(message.sender), ': ');
        const text = document.createElement('span');
        text.dir = 'auto';
        text.textContent = message.deleted ? 'message deleted' : message.content;
        line.append(text);
        quote.append(line);
      }
      item.append(quote);
    }
    const resolve = document.createElement('button');
    resolve.type = 'button';
    resolve.className = 'action';
    resolve.textContent = 'Resolve';
    resolve.setAttribute('aria-label', 'Resolve report ' + report.report);
    resolve.addEventListener('click', () => this._actions.resolve(report.report));
    item.append(resolve);
    this._open.set(report.report, item);
    this._el.list.append(item);
  }

  _name(key) {
    const bdi = document.createElement('bdi');
    this._avatars.write(bdi, key);
    return bdi;
  }

  _count() {
    const n = this._open.size;
    this._el.count.textContent = String(n);
    this._el.count.hidden = n === 0;
  }
}
