"""The Rooms panel: the rooms this browser visited, each with what came
since it was last there, the active public rooms, and how each room asks
for attention while its tab is hidden (every message, mentions, nothing)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import DESKTOP
from .helpers import wait_until
from .test_attention import notifications, with_fake_notifications
from .test_long_catch_up import say_all

pytestmark = pytest.mark.browser


def rooms_asked_again(person) -> None:
    """Back to the tab: the page asks how the rooms are doing at once."""
    person.hide()
    person.show()


# Its own server: the active rooms are the newest of the whole server's
# (another test's rooms would push these out), read every 10 s at most.
@pytest.mark.own_server
def test_visited_rooms_count_what_came_since_and_active_rooms_are_offered(
    people, server, artifacts, axe_violations
):
    # Garden has its message before any page asks how the rooms are doing:
    # the server reads the active rooms then (and then every 10 s at most).
    # Carol writes over the raw WebSocket, which asks nothing.
    say_all(server.url, "garden", "carol@example.com", ["anyone for tomatoes?"])
    alice = people("alice@example.com", viewport=DESKTOP)  # the lobby
    visited = alice.page.locator("#rooms-visited li")
    expect(visited).to_have_count(1)
    expect(visited.first.get_by_role("link")).to_have_attribute("aria-current", "page")
    expect(visited.first).to_have_text("lobby (this room)")

    # She goes to "design" with the keyboard, and back to the lobby.
    alice.page.locator("#room-input").fill("design")
    alice.page.locator("#room-input").press("Enter")
    expect(alice.page.locator("#room-name")).to_have_text("design")
    expect(alice.page.locator("#chat")).to_be_visible()
    bob = people("bob@example.com", path="r/design")
    bob.say("design news 1")
    alice.sees("bob@example.com", "design news 1")
    expect(visited).to_have_text(["design (this room)", "lobby"])
    alice.page.goto(server.url)
    expect(alice.page.locator("#room-name")).to_have_text("lobby")
    expect(visited).to_have_text(["lobby (this room)", "design"])

    # What Bob says in design while she is in the lobby is unread there.
    for i in (2, 3, 4):
        bob.say(f"design news {i}")
    design = alice.page.get_by_role("link", name="design 3 unread messages")
    rooms_asked_again(alice)
    expect(design.locator(".unread")).to_have_text("3")
    expect(alice.page.locator("#rooms-active li")).to_have_count(1)
    # Garden, where she never was, among the active rooms, with its last message's time.
    active = alice.page.locator("#rooms-active li")
    expect(alice.page.locator("#rooms-active-title")).to_be_visible()
    expect(active.get_by_role("link")).to_contain_text("garden")
    expect(active.locator("time")).to_contain_text("last message")
    alice.page.locator("#rooms-title").scroll_into_view_if_needed()
    alice.page.screenshot(path=str(artifacts / "rooms.png"))
    assert axe_violations(alice.page) == []

    # The keyboard takes her there; what she saw is not unread any more.
    design.focus()
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#room-name")).to_have_text("design")
    alice.sees("bob@example.com", "design news 4")
    alice.page.goto(server.url)
    expect(alice.page.locator("#room-name")).to_have_text("lobby")
    expect(visited).to_have_text(["lobby (this room)", "design"])
    wait_until(alice.page, lambda: alice.page.locator("#rooms-visited .unread").count() == 0)


@pytest.mark.own_server  # for its screenshot: no other test's rooms
def test_each_room_asks_for_attention_as_chosen_for_it(people, artifacts, axe_violations):
    alice = with_fake_notifications(people, "alice@example.com")
    bob = people("bob@example.com")
    alice.page.locator("#notify").click()
    expect(alice.page.locator("#notify")).to_have_attribute("aria-pressed", "true")
    title = f"{people.room} · Chatzilla"
    mode = alice.page.get_by_label("Alerts from this room")
    expect(mode).to_have_value("all")

    # Mentions only: a plain message neither counts nor notifies; a mention does.
    mode.focus()
    mode.select_option("mentions")
    expect(alice.page.locator("#rooms-visited li").first).to_contain_text("mentions only")
    alice.hide()
    bob.say("plain news")
    alice.sees("bob@example.com", "plain news")
    bob.say("@alice@example.com lunch?")
    expect(alice.page).to_have_title(f"(1) {title}")
    assert notifications(alice)["shown"] == [
        {"title": f"bob@example.com in {people.room}", "body": "@alice@example.com lunch?"}
    ]
    alice.show()
    alice.page.locator("#rooms-title").scroll_into_view_if_needed()
    alice.page.screenshot(path=str(artifacts / "notifications.png"))
    assert axe_violations(alice.page) == []

    # Remembered in this browser for this room; "Nothing": not even a mention.
    alice.page.reload()
    expect(alice.page.locator("#chat")).to_be_visible()
    expect(mode).to_have_value("mentions")
    mode.select_option("none")
    alice.hide()
    bob.say("@alice@example.com still there?")
    alice.sees("bob@example.com", "@alice@example.com still there?")
    bob.say("more news")
    alice.sees("bob@example.com", "more news")
    expect(alice.page).to_have_title(title)
    assert len(notifications(alice)["shown"]) == 0  # a fresh record since the reload

    # Every message again.
    alice.show()
    mode.select_option("all")
    alice.hide()
    bob.say("back to normal")
    expect(alice.page).to_have_title(f"(1) {title}")
    assert [n["body"] for n in notifications(alice)["shown"]] == ["back to normal"]
