"""The typing indicator: "alice@example.com is typing…" for the others, for a
few seconds; the page sends at most one `typing` frame every 2 s."""

from __future__ import annotations

import itertools
import time

import pytest
from playwright.sync_api import expect

from .relay import Relay

pytestmark = pytest.mark.browser


def typist(people, email: str):
    """A person whose frames to the server are recorded (``relay.sent``)."""
    person = people(transport="websocket")
    relay = Relay(person.page)
    person.page.reload()
    person.join(email)
    return person, relay


def test_the_others_see_who_is_typing_for_a_few_seconds_told_every_two(people):
    alice, relay = typist(people, "alice@example.com")
    bob = people("bob@example.com")
    carol = people("carol@example.com", path=f"r/{people.room}-b")

    alice.composer.press_sequentially("hel")
    expect(bob.typing).to_have_text("alice@example.com is typing…")
    # Not to herself, not to another room.
    expect(alice.typing).to_have_text("")
    expect(carol.typing).to_have_text("")

    # Sending ends it at once.
    alice.composer.press_sequentially("lo")
    alice.composer.press("Enter")
    bob.sees("alice@example.com", "hello")
    expect(bob.typing).to_have_text("", timeout=500)

    # About 4.5 s of steady typing: one frame every two seconds at most,
    # and bob sees it all along.
    since = len(relay.frames("typing"))
    started = time.monotonic()
    alice.composer.press_sequentially("the quick brown fox jumps over the lazy dog", delay=100)
    typed_for = time.monotonic() - started
    assert typed_for > 4
    times = relay.times("typing")[since:]
    assert 2 <= len(times) <= 1 + typed_for / 2, times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 1.95, gaps
    expect(bob.typing).to_have_text("alice@example.com is typing…")

    # Stopping: it goes a few seconds after the last frame. An empty
    # composer is not typing: emptied, it sends nothing more.
    alice.composer.fill("")
    emptied = time.monotonic()
    expect(bob.typing).to_have_text("", timeout=8_000)
    assert 3 < time.monotonic() - relay.times("typing")[-1] < 7.5
    # The frame is just that.
    assert all(frame == {"type": "typing"} for frame in relay.frames("typing"))
    count = len(relay.frames("typing"))
    alice.page.wait_for_timeout(max(0, 2.5 - (time.monotonic() - emptied)) * 1000)
    assert len(relay.frames("typing")) == count


def test_two_people_typing(people):
    alice = people("alice@example.com")
    bob = people("bob@example.com")
    carol = people("carol@example.com")
    alice.composer.press_sequentially("a")
    bob.composer.press_sequentially("b")
    expect(carol.typing).to_have_text("alice@example.com and bob@example.com are typing…")
    expect(alice.typing).to_have_text("bob@example.com is typing…")
    # Leaving ends it too.
    bob.page.get_by_role("button", name="Leave").click()
    expect(carol.typing).to_have_text("alice@example.com is typing…")
