"""While the tab is hidden: the unread count in the title, a "New messages"
line where the reader left off, and desktop notifications, only once the
reader asked for them with a click."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

#: A stand-in for the Notification API that records what the page does with
#: it (the permission starts as "default": never asked).
FAKE_NOTIFICATIONS = """
(function () {
  var record = { asked: 0, shown: [] };
  // Kept like a browser keeps it: for the site, across reloads.
  var permission = localStorage.getItem('fake-permission') || 'default';
  function FakeNotification(title, options) {
    record.shown.push({ title: title, body: options && options.body });
    this.close = function () {};
  }
  Object.defineProperty(FakeNotification, 'permission', { get: function () { return permission; } });
  FakeNotification.requestPermission = function () {
    record.asked += 1;
    permission = window.__grant || 'granted';
    localStorage.setItem('fake-permission', permission);
    return Promise.resolve(permission);
  };
  window.Notification = FakeNotification;
  window.__notifications = record;
})();
"""


def with_fake_notifications(people, email: str, grant: str = "granted"):
    person = people()
    person.context.add_init_script(FAKE_NOTIFICATIONS)
    person.context.add_init_script(f"window.__grant = {grant!r};")
    person.page.reload()
    person.join(email)
    return person


def notifications(person) -> dict:
    return person.page.evaluate("window.__notifications")


def test_hidden_tab_counts_unread_in_the_title_and_marks_where_you_left_off(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    expect(alice.page).to_have_title(f"{people.room} · Chatzilla")
    bob.say("seen while here")
    alice.sees("bob@example.com", "seen while here")

    alice.hide()
    for text in ("first while away", "second while away", "third while away"):
        bob.say(text)
    expect(alice.page).to_have_title(f"(3) {people.room} · Chatzilla")
    # The line sits right above the first message she has not seen.
    line = alice.page.locator("#messages li.unread-line")
    expect(line).to_have_text("New messages")
    following = line.locator("xpath=following-sibling::li[contains(@class, 'message')][1]")
    expect(following.locator(".content")).to_have_text("first while away")
    # Notices, and her own messages from another tab, do not count.
    other_tab = people("alice@example.com")
    other_tab.say("from my other tab")
    alice.sees("alice@example.com", "from my other tab", mine=True)
    people("carol@example.com")
    expect(alice.notices).to_have_text(["bob@example.com joined", "carol@example.com joined"])
    expect(alice.page).to_have_title(f"(3) {people.room} · Chatzilla")

    alice.show()
    expect(alice.page).to_have_title(f"{people.room} · Chatzilla")
    expect(line).to_have_count(1)  # still there: where she left off

    # Away again: the line moves to the new first unread message.
    alice.hide()
    bob.say("fourth while away")
    expect(alice.page).to_have_title(f"(1) {people.room} · Chatzilla")
    expect(line).to_have_count(1)
    expect(following.locator(".content")).to_have_text("fourth while away")
    alice.show()
    # Writing means she has caught up: the line goes.
    alice.say("back")
    expect(line).to_have_count(0)
    expect(alice.page).to_have_title(f"{people.room} · Chatzilla")


def test_coming_back_shows_where_you_left_off(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    alice.hide()
    for i in range(30):
        bob.say(f"news {i:02d}")
    expect(alice.messages).to_have_count(30)
    alice.show()
    # Too much to fit below the line: the line is at the top of the view,
    # and the button offers the rest.
    line = alice.page.locator("#messages li.unread-line")
    expect(line).to_be_in_viewport()
    expect(alice.message("news 00")).to_be_in_viewport()
    expect(alice.page.locator("#jump")).to_be_visible()


def test_notifications_only_after_opting_in_with_a_click(people):
    alice = with_fake_notifications(people, "alice@example.com")
    bob = people("bob@example.com")
    button = alice.page.locator("#notify")
    expect(button).to_have_text("Notify me")
    expect(button).to_have_attribute("aria-pressed", "false")

    # Not asked for: the page did not ask the browser, and shows nothing.
    alice.hide()
    bob.say("before opting in")
    expect(alice.page).to_have_title(f"(1) {people.room} · Chatzilla")
    assert notifications(alice) == {"asked": 0, "shown": []}

    alice.show()
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).to_have_text("Notifications on")
    assert notifications(alice)["asked"] == 1

    # Visible: no notification. Hidden: one per message, from the others.
    bob.say("while you look")
    alice.sees("bob@example.com", "while you look")
    alice.hide()
    bob.say("while you are away")
    expect(alice.page).to_have_title(f"(1) {people.room} · Chatzilla")
    assert notifications(alice)["shown"] == [
        {"title": f"bob@example.com in {people.room}", "body": "while you are away"}
    ]

    # Remembered on the next visit; and a click turns them off.
    alice.show()
    alice.page.reload()
    expect(alice.page.locator("#chat")).to_be_visible()
    expect(button).to_have_attribute("aria-pressed", "true")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")
    alice.hide()
    bob.say("off again")
    expect(alice.page).to_have_title(f"(1) {people.room} · Chatzilla")
    assert notifications(alice)["shown"] == []
    assert notifications(alice)["asked"] == 0  # granted already: not asked again


def test_notifications_refused_by_the_browser(people):
    alice = with_fake_notifications(people, "alice@example.com", grant="denied")
    button = alice.page.locator("#notify")
    button.click()
    expect(button).to_have_text("Notifications blocked")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("aria-pressed", "false")
