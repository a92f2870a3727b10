// Desktop notifications (the Notification API), only after the reader asks
// for them with a click on the "Notify me" button; the choice is kept in
// this browser.

import { shortened } from '../rules.js';

const STORED = 'chatzilla.notify';
const MAX_CHARS = 140;

/**
 * `button` and its `label` show the state; `memory` is {get, set} over
 * localStorage; `room` names the room in each notification; `mode()` says
 * how the room asks for attention (rooms.js: 'all', 'mentions', 'none').
 * Returns {supported, show(), notify(message), mode()}.
 */
export function setupNotifications(button, label, memory, room, mode = () => 'all') {
  const supported = typeof window.Notification === 'function';
  let wanted = memory.get(STORED) === 'on';

  function on() {
    return supported && wanted && window.Notification.permission === 'granted';
  }

  function want(value) {
    wanted = value;
    memory.set(STORED, value ? 'on' : null);
    show();
  }

  function show() {
    if (!supported) { return; }
    const permission = window.Notification.permission;
    button.setAttribute('aria-pressed', on() ? 'true' : 'false');
    button.disabled = permission === 'denied';
    label.textContent = on() ? 'Notifications on'
      : permission === 'denied' ? 'Notifications blocked' : 'Notify me';
    button.title = permission === 'denied'
      ? 'Notifications are blocked for this site in the browser\u2019s settings'
      : on() ? 'Stop desktop notifications'
        : 'Get a desktop notification for new messages while this tab is hidden';
  }

  function ask() {
    let answered = false;
    function answer(permission) {
      if (answered) { return; }
      answered = true;
      want(permission === 'granted');
    }
    // Older Safari takes a callback; everyone else returns a promise.
    const asked = window.Notification.requestPermission(answer);
    if (asked && typeof asked.then === 'function') { asked.then(answer); }
  }

  button.addEventListener('click', () => {
    if (window.Notification.permission === 'granted') {
      want(!wanted);
    } else if (window.Notification.permission === 'default') {
      ask();
    }
  });

  // A message from someone else while the tab is hidden.
  function notify(message) {
    if (!on()) { return; }
    const body = shortened(message.content, MAX_CHARS);
    try {
      // One tag per room: a burst replaces itself instead of piling up.
      const note = new window.Notification(message.sender + ' in ' + room,
        { body, tag: 'chatzilla-' + room });
      note.onclick = () => { window.focus(); note.close(); };
    } catch (err) {
      // Some mobile browsers only notify from a service worker: no
      // notification then; the title still counts.
    }
  }

  show();
  return { supported, show, notify, mode };
}
