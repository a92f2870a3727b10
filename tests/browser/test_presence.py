"""Who comes and goes: a reload or a quick trip to another room tells nobody
anything (a server restart neither: test_reconnect); someone gone for longer
than the grace period is told once; notices carry a time, and consecutive
ones are told together."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

#: The server's presence grace period in this module (8 s by default): long
#: enough for a reload on a machine busy with parallel workers.
GRACE = 5.0
#: For the test that only waits it out.
SHORT_GRACE = 2.0

pytestmark = [pytest.mark.browser, pytest.mark.server_flags("--presence-grace", str(GRACE))]


def notices(person):
    """Every notice in the list, whatever it says."""
    return person.page.locator("#messages li.notice")


def past_the_grace_period(person, grace: float = GRACE) -> None:
    """Waits out the grace period: what it would bring has come by then."""
    person.page.wait_for_timeout((grace + 1.5) * 1000)


def go_to_room(person, name: str) -> None:
    person.page.locator("#room-input").fill(name)
    person.page.locator("#room-input").press("Enter")
    expect(person.page.locator("#room-name")).to_have_text(name)
    expect(person.page.locator("#chat")).to_be_visible()
    expect(person.status).to_have_text("Connected")


def test_a_reload_or_a_quick_trip_to_another_room_tells_nobody(people, artifacts):
    bob = people("bob@example.com")
    alice = people("alice@example.com")
    expect(bob.count).to_have_text("2")
    expect(notices(bob)).to_have_count(1)  # alice joined
    alice.page.reload()
    expect(alice.status).to_have_text("Connected")
    expect(alice.count).to_have_text("2")
    go_to_room(alice, f"{people.room}-dev")
    go_to_room(alice, people.room)
    alice.say("back")
    bob.sees("alice@example.com", "back")
    past_the_grace_period(bob)
    bob.page.screenshot(path=str(artifacts / "presence-reload-and-room-switch.png"))
    expect(notices(bob)).to_have_count(1)
    expect(bob.count).to_have_text("2")
    expect(bob.people_list).to_have_text(["bob@example.com", "alice@example.com"])


@pytest.mark.server_flags("--presence-grace", str(SHORT_GRACE))
def test_who_is_online_and_someone_gone_for_longer_is_told_once_after_the_grace_period(people):
    alice = people("alice@example.com")
    expect(alice.count).to_have_text("1")
    expect(alice.page.locator("#presence")).to_have_text("Who's online 1")
    expect(alice.people_list).to_have_text(["alice@example.com"])

    bob = people("bob@example.com")
    expect(bob.count).to_have_text("2")
    expect(alice.count).to_have_text("2")
    expect(alice.notices).to_have_text(["bob@example.com joined"])
    expect(bob.notices).to_have_count(0)
    # Each sees themselves first, marked, then the others in order of arrival.
    expect(alice.people_list).to_have_text(["alice@example.com", "bob@example.com"])
    expect(bob.people_list).to_have_text(["bob@example.com", "alice@example.com"])
    expect(bob.page.locator("#people li.me .you")).to_have_text("(you)")

    # Gone: the room hears it after the server's presence grace period, once.
    expect(notices(alice)).to_have_count(1)
    bob.close()
    closed = time.monotonic()
    expect(notices(alice)).to_have_count(2, timeout=(SHORT_GRACE + 5) * 1000)
    assert time.monotonic() - closed >= SHORT_GRACE - 0.5
    expect(notices(alice).last).to_have_text(re.compile(r"^bob@example\.com left\b"))
    expect(alice.notices).to_have_text(["bob@example.com joined", "bob@example.com left"])
    expect(alice.count).to_have_text("1")
    expect(alice.people_list).to_have_text(["alice@example.com"])
    past_the_grace_period(alice, SHORT_GRACE)
    expect(notices(alice)).to_have_count(2)


def test_people_coming_and_going_together_are_told_together_with_the_time(people):
    alice = people("alice@example.com")
    others = [people(f"{name}@example.com") for name in ("carol", "dave", "erin")]
    expect(alice.count).to_have_text("4")
    # One line for the three, not three lines; the names are in its tooltip.
    expect(notices(alice)).to_have_count(1)
    notice = notices(alice).first
    expect(notice.locator(".what")).to_have_text("3 people joined")
    expect(notice).to_have_attribute("title", "carol@example.com, dave@example.com, erin@example.com")
    expect(notice.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    # Two leaving together, at once with the Leave button; a message in
    # between starts a new line.
    alice.say("bye, you two?")
    for person in others[:2]:
        person.page.get_by_role("button", name="Leave").click()
    expect(notices(alice)).to_have_count(2)
    expect(notices(alice).last.locator(".what")).to_have_text("carol@example.com and dave@example.com left")
    expect(alice.count).to_have_text("2")
    # The newest notice is where the reader is: the list's last item.
    expect(alice.page.locator("#messages > li").last).to_have_class("notice presence")
