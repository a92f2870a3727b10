// The "Who's online" panel and its count (in the panel's title and on the
// button that opens the panel on narrow screens). While the connection is
// down the list is the last one known: greyed, and it says so.

/**
 * `el` holds the panel's elements (see main.js); `avatars` makes the
 * pictures; `actions.more()` asks for more of the people present (in a
 * crowd the server lists the first hundred at first, docs/protocol.md).
 */
export class People {
  constructor(el, avatars, actions = {}) {
    this._el = el;
    this._avatars = avatars;
    if (el.more && actions.more) { el.more.addEventListener('click', () => actions.more()); }
    this._items = new Map();  // email -> its <li>
    this._me = null;
    this._joined = false;
    this._roles = {};         // key -> role, for the badges
  }

  /**
   * Everyone present (in the order they came) as `me` sees them; `me`
   * null: nobody, not joined. `roles` (key -> admin, owner or moderator)
   * puts a badge by their names. `present`: how many are here, when the
   * list is only the first of them; `more`: whether more can be asked for.
   */
  set(participants, me, roles = {}, present = participants.length, more = false) {
    this._roles = roles;
    this._me = me;
    this._joined = me !== null;
    this._items.clear();
    this._el.people.replaceChildren();
    participants.forEach((email) => this._add(email));
    this._count(present);
    this._more(more);
  }

  /** A page of the people present came: they join the list. */
  page(participants, present, more) {
    participants.forEach((email) => this._add(email));
    this._count(present);
    this._more(more);
  }

  /** Someone came or went; `count` is the server's count afterwards. */
  change(event, email, count) {
    if (event === 'join') { this._add(email); } else { this._remove(email); }
    this._count(count);
  }

  /** The room's roles changed: the badges follow. */
  roles(roles) {
    this._roles = roles;
    for (const [key, item] of this._items) { this._badge(item, key); }
  }

  _badge(item, key) {
    const old = item.querySelector('.role-badge');
    if (old) { old.remove(); }
    const role = this._roles[key];
    if (!role) { return; }
    const badge = document.createElement('span');
    badge.className = 'role-badge ' + role;
    badge.textContent = role;
    item.querySelector('.name').append(' ', badge);
  }

  /** Whether the list is live (connected and joined) or the last one known. */
  live(isLive) {
    const stale = this._joined && !isLive;
    this._el.panel.classList.toggle('stale', stale);
    this._el.toggle.classList.toggle('stale', stale);
    this._el.stale.hidden = !stale;
    // No more people can be asked for until connected again.
    if (this._el.more) { this._el.more.disabled = stale; }
  }

  _item(email) {
    const item = document.createElement('li');
    item.className = 'person';
    item.dataset.email = email;
    const name = document.createElement('span');
    name.className = 'name';
    const address = document.createElement('bdi');
    address.className = 'email';
    this._avatars.write(address, email);
    name.appendChild(address);
    if (email === this._me) {
      item.classList.add('me');
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = '(you)';
      name.append(' ', you);
    }
    item.append(this._avatars.avatar(email, 'small'), name);
    this._badge(item, email);
    return item;
  }

  _add(email) {
    if (this._items.has(email)) { return; }
    const item = this._item(email);
    this._items.set(email, item);
    // You first, then everyone in the order they came.
    if (email === this._me) { this._el.people.prepend(item); } else { this._el.people.appendChild(item); }
  }

  _remove(email) {
    const item = this._items.get(email);
    if (item) { item.remove(); }
    this._items.delete(email);
  }

  _more(more) {
    const button = this._el.more;
    if (!button) { return; }
    // The last page came: the button goes, and whoever pressed it by
    // keyboard lands on the list it filled, not on the page's start.
    if (!more && document.activeElement === button) {
      this._el.people.tabIndex = -1;
      this._el.people.focus();
    }
    button.hidden = !more;
  }

  _count(n) {
    const el = this._el;
    el.count.textContent = String(n);
    el.toggleCount.textContent = String(n);
    el.count.hidden = el.toggleCount.hidden = !this._joined && n === 0;
    el.empty.hidden = this._joined || n > 0;
    el.toggle.setAttribute('aria-label', "Who's online: " + n);
  }
}
