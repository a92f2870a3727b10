// The composer: Enter sends (Shift+Enter starts a new line), what is sent
// leaves the box at once, and what the server would refuse is said at
// once, before sending: a blank message, or one over the length limit, with
// a counter as the limit nears. It grows with its text, up to the CSS
// max-height.

import { checkMessage } from '../rules.js';

// The counter shows from this share of the limit on.
const COUNT_FROM = 0.9;

// The composer grows with what is typed; browsers with `field-sizing:
// content` do that by themselves.
const GROWS = typeof CSS !== 'undefined' && CSS.supports && CSS.supports('field-sizing', 'content');

/**
 * `el` holds the form, textarea, counter and error elements; `maxContent`
 * is the server's limit in characters; `formats` writes numbers;
 * `handlers.submit(text)` sends a message (null when it went, else the
 * problem: 'empty', 'too_long'), `handlers.typed(text)` hears every change.
 */
export class Composer {
  constructor(el, maxContent, formats, handlers) {
    this._el = el;
    this._max = maxContent;
    this._formats = formats;
    this._handlers = handlers;
    this._problem = null;  // what the error line says, by kind: 'empty', 'too_long', 'server'
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this._submit();
    });
    el.text.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        el.form.requestSubmit();
      }
    });
    el.text.addEventListener('input', () => {
      this._changed();
      handlers.typed(el.text.value);
    });
  }

  get value() { return this._el.text.value; }

  /** Replaces the text (and the problems said about the old one). */
  set(value) {
    this._el.text.value = value;
    this._changed();
  }

  focus() { this._el.text.focus(); }

  /** Says `reason` under the composer (a problem from the server); '' clears it. */
  problem(reason) {
    this._say(reason ? 'server' : null, reason);
  }

  _submit() {
    const problem = this._handlers.submit(this._el.text.value);
    if (problem === null) {
      this.set('');
      this._say(null, '');
    } else if (problem === 'empty') {
      this._say('empty', 'Nothing to send: write a message first.');
    } else if (problem === 'too_long') {
      this._sayTooLong();
    }
  }

  // The same words however far over: a screen reader says them once, and
  // the counter has the figures.
  _sayTooLong() {
    this._say('too_long', 'Too long to send: a message has at most '
      + this._formats.number(this._max) + ' characters. Shorten it or split it in two.');
  }

  // The text changed: the counter follows, and what was said of the old
  // text goes (a length problem is said again at once if it remains).
  _changed() {
    this._fit();
    const checked = checkMessage(this._el.text.value, this._max);
    const counter = this._el.counter;
    const near = checked.length >= this._max * COUNT_FROM;
    counter.hidden = !near;
    counter.textContent = near
      ? this._formats.number(checked.length) + ' / ' + this._formats.number(this._max) : '';
    counter.classList.toggle('over', checked.problem === 'too_long');
    this._el.text.setAttribute('aria-invalid', checked.problem === 'too_long' ? 'true' : 'false');
    if (checked.problem === 'too_long') {
      this._sayTooLong();
    } else if (this._problem === 'too_long' || this._problem === 'empty') {
      this._say(null, '');
    }
  }

  _say(kind, text) {
    this._problem = kind;
    // Unchanged text is not announced again.
    if (this._el.error.textContent !== text) { this._el.error.textContent = text; }
    this._el.error.hidden = !text;
  }

  _fit() {
    if (GROWS) { return; }
    const text = this._el.text;
    text.style.height = 'auto';
    text.style.height = text.scrollHeight + 2 + 'px';
  }
}
