"""Rooms in the browser: / is the lobby, /r/NAME a room; nothing crosses over."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

#: For the tests that read the lobby's history and ids: a server of their
#: own, whose lobby no other test has used (the error pages only go there).
fresh_lobby = pytest.mark.own_server


@fresh_lobby
def test_messages_stay_in_their_room(people):
    alice = people("alice@example.com", path="r/a")
    bob = people("bob@example.com", path="r/a")
    carol = people("carol@example.com")  # the lobby

    for person, room in ((alice, "a"), (bob, "a"), (carol, "lobby")):
        expect(person.page.locator("#room-name")).to_have_text(room)
        expect(person.page).to_have_title(re.compile("^" + room + " "))
    # Presence is per room too: Carol is not with Alice and Bob.
    expect(alice.count).to_have_text("2")
    expect(carol.count).to_have_text("1")
    expect(alice.notices).to_have_text(["bob@example.com joined"])

    alice.say("in room a, from alice")
    bob.sees("alice@example.com", "in room a, from alice")
    carol.say("in the lobby, from carol")
    bob.say("in room a, from bob")
    alice.sees("bob@example.com", "in room a, from bob")

    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(
            ["in room a, from alice", "in room a, from bob"]
        )
    expect(carol.messages.locator(".content")).to_have_text(["in the lobby, from carol"])
    expect(carol.notices).to_have_count(0)
    # Ids are per room: each room's first message is 1.
    assert alice.ids() == [1, 2] and carol.ids() == [1]

    # A page loaded afresh (Bob's and Carol's, reloaded: back in at once, as
    # the page remembers them) gets each room's own history.
    for person, history in (
        (bob, ["in room a, from alice", "in room a, from bob"]),
        (carol, ["in the lobby, from carol"]),
    ):
        person.page.reload()
        expect(person.page.locator("#chat")).to_be_visible()
        expect(person.messages.locator(".content")).to_have_text(history)


@fresh_lobby
def test_go_to_room_form(people, server):
    alice = people("alice@example.com")
    page = alice.page
    field = page.locator("#room-input")
    error = page.locator("#room-error")

    # Names the server would refuse are explained here, and nothing happens.
    for bad in ["Bad Name", "caf\u00e9", "a/b", "x" * 65, "   "]:
        field.fill(bad)
        field.press("Enter")
        expect(error).to_be_visible()
        expect(error).to_contain_text("a-z, 0-9, - and _")
        assert page.url == server.url
    assert field.get_attribute("aria-describedby") == "room-error"

    # Names are case-insensitive: "Dev-Team_2" is the room dev-team_2.
    field.fill("Dev-Team_2")
    page.locator("#room-form button[type=submit]").click()
    expect(page).to_have_url(server.url + "r/dev-team_2")
    expect(page.locator("#room-name")).to_have_text("dev-team_2")
    expect(page.locator("#room-error")).to_be_hidden()
    # The page remembers who she is: in the new room she is in at once.
    expect(page.locator("#join-form")).to_be_hidden()
    expect(alice.people_list).to_have_text(["alice@example.com"])
    alice.say("hello dev")

    # "lobby" goes back to /, where the dev message is not.
    page.locator("#room-input").fill("lobby")
    page.locator("#room-input").press("Enter")
    expect(page).to_have_url(server.url)
    expect(page.locator("#room-name")).to_have_text("lobby")
    expect(alice.people_list).to_have_text(["alice@example.com"])
    alice.say("hello lobby")
    expect(alice.messages.locator(".content")).to_have_text(["hello lobby"])


def test_a_room_name_in_capitals_leads_to_the_room(people, server):
    """Room names are case-insensitive: /r/General is the room general."""
    alice = people("alice@example.com", path="r/general")
    # The query goes along (here: the transport a test asks for).
    bob = people(path="r/GENERAL", transport="xhr-polling")
    expect(bob.page).to_have_url(server.url + "r/general?transports=xhr-polling")
    bob.join("bob@example.com")
    assert bob.transport() == "xhr-polling"
    expect(bob.page.locator("#room-name")).to_have_text("general")
    expect(bob.people_list).to_have_text(["bob@example.com", "alice@example.com"])
    bob.say("found it")
    alice.sees("bob@example.com", "found it")


#: Addresses with no page: a room name the server would refuse (spaces, too
#: long, more than one segment) and paths that are nothing at all.
BAD_ADDRESSES = [
    ("r/Bad%20Name", "There is no room with this name"),
    ("r/" + "x" * 65, "There is no room with this name"),
    ("r/a/b", "There is no page at this address"),
    ("no/such/page", "There is no page at this address"),
    ("static/nothing.js", "There is no page at this address"),
]


def test_a_bad_address_is_a_404_page_with_a_way_back_to_the_lobby(people, server, axe_violations):
    """One page goes to each bad address in turn, then back to the lobby by
    the last one's link; the longest good room name is fine."""
    alice = people()
    page = alice.page
    for path, words in BAD_ADDRESSES:
        response = page.goto(server.url + path)
        assert response.status == 404, path
        expect(page.locator("#join-form")).to_have_count(0)
        expect(page).to_have_title("Not Found · Chatzilla")
        expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
        expect(page.locator("main")).to_contain_text(words)
        assert axe_violations(page) == [], path
        # Styled as the chat is, and nothing sticks out of a phone's screen.
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
        page.set_viewport_size({"width": 320, "height": 640})
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, path
        page.set_viewport_size({"width": 900, "height": 640})
    # Chromium logs each 404 it navigated to; those are the point here.
    assert all("status of 404" in text for text in alice.console_errors), alice.console_errors
    alice.console_errors.clear()
    page.get_by_role("link", name="Go to the lobby").click()
    expect(page).to_have_url(server.url)
    alice.join("alice@example.com")
    expect(page.locator("#room-name")).to_have_text("lobby")
    # The longest good name is fine.
    response = page.goto(server.url + "r/" + "x" * 64)
    assert response.status == 200
    expect(page.locator("#chat")).to_be_visible()  # she is remembered
    expect(page.locator("#room-name")).to_have_text("x" * 64)
