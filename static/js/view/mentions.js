// "@" in the composer: a list of the room's people whose name starts with
// what follows it; ArrowUp/ArrowDown move, Enter or Tab puts "@Name " in
// the text, Escape closes. Names go in as text only.

const MAX_SHOWN = 6;
// "@" at the start or after white space, then what is typed so far.
const TYPING = /(?:^|\s)@([^\s@]*)$/u;

/**
 * `text`: the composer's textarea; `list`: an empty <ul> for the choices;
 * `people()`: {names, me} as for the message list (names of the room's
 * people). Made before the composer, so its keys are seen first.
 */
export class MentionPicker {
  constructor(text, list, people) {
    this._text = text;
    this._list = list;
    this._people = people;
    this._choices = [];
    this._at = 0;
    list.setAttribute('role', 'listbox');
    list.hidden = true;
    text.setAttribute('aria-autocomplete', 'list');
    text.setAttribute('aria-controls', list.id);
    text.addEventListener('input', () => this._update());
    text.addEventListener('click', () => this._update());
    text.addEventListener('blur', () => this._close());
    text.addEventListener('keydown', (event) => this._key(event));
  }

  _typed() {
    const before = this._text.value.slice(0, this._text.selectionStart);
    const match = TYPING.exec(before);
    return match ? match[1] : null;
  }

  _update() {
    const typed = this._typed();
    if (typed === null) { return this._close(); }
    const { names, me } = this._people();
    const wanted = typed.toLocaleLowerCase();
    this._choices = [...new Set(names)]
      .filter((name) => name !== me && name.toLocaleLowerCase().startsWith(wanted))
      .slice(0, MAX_SHOWN);
    if (this._choices.length === 0) { return this._close(); }
    this._at = 0;
    this._show();
  }

  _show() {
    this._list.replaceChildren(...this._choices.map((name, i) => {
      const option = document.createElement('li');
      option.id = `${this._list.id}-${i}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', String(i === this._at));
      option.dir = 'auto';
      option.textContent = name;
      // Chosen on mousedown: a click would blur the composer first.
      option.addEventListener('mousedown', (event) => {
        event.preventDefault();
        this._choose(name);
      });
      return option;
    }));
    this._list.hidden = false;
    // (No aria-expanded: a textarea is a textbox, which has none.)
    this._text.setAttribute('aria-activedescendant', `${this._list.id}-${this._at}`);
  }

  _close() {
    this._choices = [];
    this._list.hidden = true;
    this._list.replaceChildren();
    this._text.removeAttribute('aria-activedescendant');
  }

  _key(event) {
    if (this._choices.length === 0 || event.isComposing) { return; }
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const step = event.key === 'ArrowDown' ? 1 : -1;
      this._at = (this._at + step + this._choices.length) % this._choices.length;
      this._show();
    } else if (event.key === 'Enter' || event.key === 'Tab') {
      this._choose(this._choices[this._at]);
    } else if (event.key === 'Escape') {
      this._close();
    } else {
      return;
    }
    // Handled here: not a send (the composer's Enter), not a move of focus.
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  _choose(name) {
    const text = this._text;
    const caret = text.selectionStart;
    const before = text.value.slice(0, caret);
    const start = before.lastIndexOf('@');
    const chosen = '@' + name + ' ';
    text.value = before.slice(0, start) + chosen + text.value.slice(caret);
    text.selectionStart = text.selectionEnd = start + chosen.length;
    this._close();
    text.dispatchEvent(new Event('input', { bubbles: true }));
  }
}
