// The search panel: a box, the results (newest first) and "Older results".
// A result is a button: it shows the message in the conversation. Each
// shows the part of the message around what was searched for, the words
// found marked (<mark>). User text goes in as text nodes only.

import { excerpt, queryWords } from '../excerpt.js';

/**
 * `el`: {form, input, status, results, more}; `formats` (when.js);
 * `avatars` writes people's names; `actions`: search(q, before) (null when
 * on its way, else why not) and reveal(id).
 */
export class SearchPanel {
  constructor(el, formats, avatars, actions) {
    this._el = el;
    this._formats = formats;
    this._avatars = avatars;
    this._actions = actions;
    this._q = '';
    this._last = null;  // the oldest result's id: "Older results" asks before it
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const q = el.input.value.trim();
      if (!q) { return; }
      this._ask(q, null);
    });
    el.more.addEventListener('click', () => this._ask(this._q, this._last));
  }

  _ask(q, before) {
    const problem = this._actions.search(q, before);
    if (problem) {
      this._say(problem === 'offline' ? 'Not connected: search once connected.' : problem);
      return;
    }
    this._q = q;
    if (before === null) {
      this._el.results.replaceChildren();
      this._el.more.hidden = true;
    }
    this._say('Searching…');
  }

  /** The server's answer: `messages` (as the view shows them), newest first. */
  found({ before, messages, more }) {
    if (before === null) { this._el.results.replaceChildren(); }
    for (const message of messages) { this._el.results.appendChild(this._result(message)); }
    this._last = messages.length > 0 ? messages[messages.length - 1].id : this._last;
    this._el.more.hidden = !more;
    const count = this._el.results.children.length;
    this._say(count === 0 ? 'No messages found.' : `${count}${more ? '+' : ''} found, newest first.`);
  }

  /** The search was refused, for `reason`. */
  problem(reason) { this._say(reason); }

  /** A new conversation: nothing found yet. */
  clear() {
    this._el.results.replaceChildren();
    this._el.more.hidden = true;
    this._say('');
  }

  _result(message) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'result';
    button.dataset.id = String(message.id);
    const sender = document.createElement('b');
    sender.dir = 'auto';
    if (message.mine) {
      sender.textContent = 'Me';
    } else {
      this._avatars.write(sender, message.sender);
    }
    const time = document.createElement('time');
    time.dateTime = new Date(message.ts * 1000).toISOString();
    time.textContent = this._formats.longTime(message.ts);
    const text = document.createElement('span');
    text.className = 'text';
    text.dir = 'auto';
    for (const part of excerpt(message.content, queryWords(this._q))) {
      if (part.mark) {
        const mark = document.createElement('mark');
        mark.textContent = part.text;
        text.appendChild(mark);
      } else {
        text.appendChild(document.createTextNode(part.text));
      }
    }
    button.append(sender, ' ', time, text);
    button.addEventListener('click', () => this._actions.reveal(message.id));
    item.appendChild(button);
    return item;
  }

  _say(text) { this._el.status.textContent = text; }
}
