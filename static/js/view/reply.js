// The reply being written: above the composer, who and what it answers,
// with a button (and Escape in the composer) that makes it a plain
// message again. Names and text go in as text only.

import { quoteOf } from '../rules.js';
import { isolated } from './list.js';

/**
 * `el`: {box, text, cancel, input} (the composer's textarea); `avatars`
 * writes people's names.
 */
export class ReplyBar {
  constructor(el, avatars) {
    this._el = el;
    this._avatars = avatars;
    this._target = null;
    el.cancel.addEventListener('click', () => {
      this.cancel();
      el.input.focus();
    });
    // After the mention list's own Escape (which stops it when the list is open).
    el.input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this._target !== null && !event.isComposing) {
        event.preventDefault();
        this.cancel();
      }
    });
  }

  /** The message the next one answers ({id, sender, content}), or null. */
  get target() { return this._target; }

  /** The next message answers `target` ({id, sender, content, mine}). */
  start(target) {
    this._target = target;
    const name = isolated(target.sender, this._avatars);
    if (target.mine) { name.textContent = 'Me'; }
    const text = document.createElement('span');
    text.className = 'excerpt';
    text.dir = 'auto';
    text.textContent = quoteOf(target.content);
    this._el.text.replaceChildren('Replying to ', name, ': ', text);
    this._el.box.hidden = false;
  }

  /** A plain message again. */
  cancel() {
    this._target = null;
    this._el.box.hidden = true;
    this._el.text.replaceChildren();
  }
}
