// The invitations panel of a private room, for its moderators, owner and
// admins (docs/protocol.md, invitation links): invite someone by the
// address they signed in with, make a link to hand on (shown to its maker
// alone, with Copy), and list and revoke the room's links. Text is
// inserted as text, never HTML.

/**
 * `el` holds the panel's elements (see main.js); `avatars` writes names;
 * `when(ts)` formats a server time (seconds); `linkOf(secret)` is the page's URL that
 * carries it; `actions` is {invite(email), make(), load(), revoke(id)},
 * each null when on its way, else a reason it is not.
 */
export class InvitationsPanel {
  constructor(el, avatars, when, linkOf, actions) {
    this._el = el;
    this._avatars = avatars;
    this._when = when;
    this._linkOf = linkOf;
    this._actions = actions;
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const email = el.email.value.trim();
      if (!email) {
        this._say('Type the address they signed in with.');
        return;
      }
      this._waiting(actions.invite(email), 'Inviting…');
    });
    el.make.addEventListener('click', () => this._waiting(actions.make(), 'Making a link…'));
    el.load.addEventListener('click', () => this._waiting(actions.load(), ''));
    el.copy.addEventListener('click', () => {
      el.url.select();
      const done = () => this._say('Link copied.');
      if (navigator.clipboard) {
        navigator.clipboard.writeText(el.url.value).then(done, () => this._say('Select the link and copy it.'));
      } else {
        this._say('Select the link and copy it.');
      }
    });
  }

  /** Whether this person invites here (a moderator of a private room); hiding empties it. */
  show(visible) {
    if (this._el.panel.hidden === !visible) { return; }
    this._el.panel.hidden = !visible;
    if (!visible) {
      this._el.made.hidden = true;
      this._el.url.value = '';
      this._el.links.replaceChildren();
      this._say('');
    }
  }

  /** Someone was invited by address (their `moderated` frame came back). */
  invited(name) {
    this._el.email.value = '';
    this._say('Invited ' + name + '.');
  }

  /** A link was made: {secret, id, expires (seconds)}. */
  made(link) {
    this._el.url.value = this._linkOf(link.secret);
    this._el.made.hidden = false;
    this._el.expiry.textContent = 'Anyone signed in who opens it can join, until ' +
      this._when(link.expires) + '.';
    this._say('');
    this._el.url.focus();
    this._el.url.select();
    this._actions.load();  // the list, with the new one
  }

  /** The room's links, as `invite_links` lists them (`by` as keys). */
  list(links) {
    this._el.links.replaceChildren();
    for (const link of links) {
      const item = document.createElement('li');
      item.dataset.link = link.id;
      const words = document.createElement('span');
      words.textContent = 'By ' + this._avatars.nameOf(link.by) + ', until ' + this._when(link.expires);
      const revoke = document.createElement('button');
      revoke.type = 'button';
      revoke.className = 'link-button';
      revoke.textContent = 'Revoke';
      revoke.addEventListener('click', () => this._waiting(this._actions.revoke(link.id), 'Revoking…'));
      item.append(words, ' ', revoke);
      this._el.links.append(item);
    }
    this._say(links.length ? '' : 'No links: make one to hand on.');
  }

  /** Link `id` no longer lets anyone in. */
  revoked(id) {
    for (const item of this._el.links.children) {
      if (item.dataset.link === id) { item.remove(); }
    }
    this._say('Link revoked: it lets nobody in any more.');
  }

  /** What the server refused, in its words. */
  problem(reason) { this._say('Not done: ' + reason); }

  _waiting(problem, doing) { this._say(problem ? 'Not done: ' + problem : doing); }

  _say(text) { this._el.state.textContent = text; }
}
