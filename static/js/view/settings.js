// The room settings panel: its topic, private, read-only, for the room's
// owner and admins alone (docs/protocol.md, rules). The form shows the
// rules as they are; Save sends the ones changed.

/** `el` holds the panel's elements (see main.js); `save(rules)` is null when on its way, else a reason. */
export class SettingsPanel {
  constructor(el, save) {
    this._el = el;
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const problem = save({
        topic: el.topic.value.trim(),
        private: el.private.checked,
        read_only: el.readOnly.checked,
      });
      el.state.textContent = problem ? 'Not saved: ' + problem : 'Saving…';
    });
  }

  /** Whether this person may change the rules (owner, admin); hiding empties it. */
  show(visible) {
    this._el.panel.hidden = !visible;
    if (!visible) { this._el.state.textContent = ''; }
  }

  /** The room's rules as they are now ({topic, private, read_only}). */
  rules(rules) {
    const el = this._el;
    el.topic.value = rules ? rules.topic : '';
    el.private.checked = Boolean(rules && rules.private);
    el.readOnly.checked = Boolean(rules && rules.read_only);
    if (el.state.textContent === 'Saving…') { el.state.textContent = 'Saved'; }
  }
}
