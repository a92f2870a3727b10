"""Losing the connection without losing a message.

A page that was offline rejoins with ``since`` and shows every message it
missed, once and in order; what was typed meanwhile shows as pending and goes
out after the rejoin, once, even when only its acknowledgement was lost.

Two ways to be offline:

* ``offline``: xhr-polling, and Chromium's offline mode for the context. The
  poll in flight is not aborted by it; it ends at the next heartbeat, which
  this module's server sends every second (25 s by default), so the page
  notices at once.
* ``cut``: a websocket through :class:`~tests.browser.relay.Relay`, closed on
  both sides and refused until it is restored (the server drops the session
  at once).
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.sync_api import expect

from .helpers import wait_until
from .relay import Relay

#: The page retries after about 0.5 s, 1 s, 2 s, 4 s... (+-25% jitter).
RECONNECT_TIMEOUT = 15_000
#: Messages in `joined.history` on this module's server. Fewer than a page
#: misses in these tests: without `since` a rejoin would not get them all.
HISTORY_LIMIT = 5
#: The longest message the pages are told of; the tests that need a message
#: refused restart the server with MAX_CONTENT while the page is offline.
PAGE_MAX_CONTENT = 200
MAX_CONTENT = 80


FLAGS = ("--heartbeat-delay", "1", "--history-limit", str(HISTORY_LIMIT))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.server_flags(*FLAGS, "--max-content", str(PAGE_MAX_CONTENT)),
]

#: The tests of ``lower_the_limit``, which restarts the server.
restarts = pytest.mark.own_server


def lower_the_limit(start_server, server):
    """The server comes back allowing only MAX_CONTENT characters: what a
    page typed offline within the limit it knew is now refused for good."""
    server.stop()
    return start_server(server.port, *FLAGS, "--max-content", str(MAX_CONTENT))


class Outage:
    """Takes one person's page off the network and back (see the module doc)."""

    def __init__(self, people, email: str, how: str, **kw) -> None:
        self.how = how
        if how == "offline":
            self.person = people(email, transport="xhr-polling", **kw)
            self.relay = None
        else:
            self.person = people(transport="websocket", **kw)
            self.relay = Relay(self.person.page)
            self.person.page.reload()
            self.person.join(email)
        assert self.person.transport() == ("xhr-polling" if how == "offline" else "websocket")

    def begin(self) -> None:
        if self.relay is None:
            self.person.context.set_offline(True)
        else:
            self.relay.cut()
        expect(self.person.status).to_have_text("Reconnecting…")

    def end(self) -> None:
        if self.relay is None:
            self.person.context.set_offline(False)
        else:
            self.relay.restore()
        expect(self.person.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT)


def stored(server, room: str, content: str) -> int:
    """How many times ``server``'s database (SQLite: the default storage)
    holds a message with ``content`` in ``room``."""
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        query = "SELECT count(*) FROM messages WHERE room = ? AND content = ?"
        return db.execute(query, (room, content)).fetchone()[0]


def test_back_online_the_page_shows_every_missed_message_once(people, server):
    """Cut off (the page's logic is the same whichever way it is offline:
    test_long_catch_up catches up both ways, test_reconnect sends what was
    typed while down on every kind of transport)."""
    people.allow_network_errors = True  # requests refused while offline
    outage = Outage(people, "alice@example.com", "cut")
    alice = outage.person
    bob = people("bob@example.com")
    bob.say("before the outage")
    alice.sees("bob@example.com", "before the outage")

    outage.begin()
    alice.composer.fill("typed while offline")
    alice.composer.press("Enter")
    # Shown at once as pending, and out of the composer.
    expect(alice.composer).to_have_value("")
    pending = alice.message("typed while offline")
    expect(pending).to_have_count(1)
    expect(pending).to_have_class(re.compile(r"\bpending\b"))
    expect(pending.locator(".sender")).to_have_text("Me")
    expect(pending.locator(".state")).to_have_text("sending…")
    assert pending.get_attribute("data-id") is None
    # Greyed: the text is the muted colour, not the normal one.
    colour = pending.locator(".content").evaluate("el => getComputedStyle(el).color")
    normal = (
        alice.message("before the outage").locator(".content").evaluate("el => getComputedStyle(el).color")
    )
    assert colour != normal

    missed = [f"missed {i:02d}" for i in range(1, 21)]
    for text in missed:
        bob.say(text)
    # Still offline: none of it reached Alice.
    expect(alice.message("missed 20")).to_have_count(0)

    outage.end()
    everything = ["before the outage", *missed, "typed while offline"]
    expect(alice.messages.locator(".content")).to_have_text(everything)
    expect(alice.pending).to_have_count(0)
    alice.sees("alice@example.com", "typed while offline", mine=True)
    bob.sees("alice@example.com", "typed while offline")
    expect(bob.messages.locator(".content")).to_have_text(everything)
    assert alice.ids() == bob.ids() == list(range(1, len(everything) + 1))
    assert stored(server, people.room, "typed while offline") == 1

    # And the conversation goes on, both ways.
    bob.say("welcome back")
    alice.sees("bob@example.com", "welcome back")
    alice.say("thanks")
    bob.sees("alice@example.com", "thanks")
    expect(alice.messages).to_have_count(len(everything) + 2)


def test_a_lost_ack_is_retried_with_the_same_ref_and_kept_once(people, server):
    people.allow_network_errors = True
    outage = Outage(people, "alice@example.com", "cut")
    alice, relay = outage.person, outage.relay
    bob = people("bob@example.com")

    relay.drop = lambda frame: frame.get("type") == "sent"
    alice.composer.fill("my ack gets lost")
    alice.composer.press("Enter")
    # The server took it (Bob has it); Alice never hears so.
    bob.sees("alice@example.com", "my ack gets lost")
    wait_until(alice.page, lambda: relay.dropped)
    # Out of the composer at once (Enter cannot send it twice), pending.
    expect(alice.composer).to_have_value("")
    expect(alice.pending).to_have_count(1)

    relay.drop = None
    outage.begin()
    expect(alice.pending).to_have_count(1)
    outage.end()

    # Until the retry's ack, the rejoin's history shows it beside the
    # pending one (then sees() finds two): the ack first.
    expect(alice.pending).to_have_count(0)
    alice.sees("alice@example.com", "my ack gets lost", mine=True)
    bob.say("after the retry")
    alice.sees("bob@example.com", "after the retry")
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text(["my ack gets lost", "after the retry"])
    # Sent twice with one ref; the server kept it once.
    sends = relay.frames("message")
    assert [frame["content"] for frame in sends] == ["my ack gets lost"] * 2
    assert sends[0]["ref"] == sends[1]["ref"]
    assert stored(server, people.room, "my ack gets lost") == 1


def test_every_message_carries_a_fresh_ref(people):
    outage = Outage(people, "alice@example.com", "cut")
    alice, relay = outage.person, outage.relay
    for text in ("one", "two", "three"):
        alice.say(text)
    refs = [frame["ref"] for frame in relay.frames("message")]
    assert len(refs) == len(set(refs)) == 3
    assert all(isinstance(ref, str) and 0 < len(ref) <= 64 for ref in refs)
    # Another page load (the same person) starts from other refs.
    again = Outage(people, "alice@example.com", "cut")
    again.person.say("four")
    assert again.relay.frames("message")[0]["ref"] not in refs


@restarts
def test_pending_and_failed_messages_in_a_room(people, server, start_server, artifacts):
    """Typed offline and refused by the server on the way back: failed, with
    the reason, where it was typed. Edit puts the refused text back in the
    composer (after any draft) and takes it out of the list; Remove only
    takes it out."""
    people.allow_network_errors = True
    outage = Outage(people, "alice@example.com", "cut", path="r/launch")
    alice = outage.person
    bob = people("bob@example.com", path="r/launch")
    bob.say("Release notes are in the doc, have a look.")
    alice.say("Reading them now.")

    too_long = ("Here is everything I think about the release, in one long message " * 2).strip()
    also_too_long = ("And here is everything else on my mind today, " * 2).strip()
    assert MAX_CONTENT < min(len(too_long), len(also_too_long)) <= PAGE_MAX_CONTENT
    outage.begin()
    for text in (too_long, also_too_long):
        alice.composer.fill(text)
        alice.composer.press("Enter")
    expect(alice.pending).to_have_count(2)
    lower_the_limit(start_server, server)
    expect(bob.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT)
    outage.end()
    # Refused for good: marked failed with the server's reason, not retried.
    failed = alice.failed
    expect(failed).to_have_count(2)
    expect(alice.pending).to_have_count(0)
    expect(failed.locator(".sender")).to_have_text(["Me", "Me"])
    reason = re.compile(rf"^not sent: a message has at most {MAX_CONTENT} characters")
    expect(failed.locator(".state")).to_have_text([reason, reason])
    expect(failed.locator(".content")).to_have_text([too_long, also_too_long])

    bob.say("Are you still there?")
    outage.begin()
    for text in ("Yes, my train went into a tunnel.", "Sending this from the tunnel."):
        alice.composer.fill(text)
        alice.composer.press("Enter")
    expect(alice.pending).to_have_count(2)
    expect(alice.pending.locator(".state")).to_have_text(["sending…", "sending…"])
    path = artifacts / "room-pending-and-failed.png"
    alice.page.screenshot(path=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    outage.end()
    expect(alice.pending).to_have_count(0)
    expect(alice.failed).to_have_count(2)
    delivered = [
        "Release notes are in the doc, have a look.",
        "Reading them now.",
        "Are you still there?",
        "Yes, my train went into a tunnel.",
        "Sending this from the tunnel.",
    ]
    expect(bob.messages.locator(".content")).to_have_text(delivered)
    # The failed ones stay where they were typed, the others are confirmed.
    expect(alice.messages.locator(".content")).to_have_text(
        [*delivered[:2], too_long, also_too_long, *delivered[2:]]
    )
    alice.page.screenshot(path=str(artifacts / "room-after-reconnect.png"))

    # Edit: the text back in the composer, after the draft; out of the list.
    edit = alice.failed.first.get_by_role("button", name="Edit the message that was not sent")
    expect(edit).to_have_text("Edit")
    alice.composer.fill("Short version:")
    edit.click()
    expect(alice.failed).to_have_count(1)
    expect(alice.composer).to_have_value("Short version: " + too_long)
    expect(alice.composer).to_be_focused()
    # Remove: only out of the list.
    alice.failed.get_by_role("button", name="Remove the message that was not sent").click()
    expect(alice.failed).to_have_count(0)
    expect(alice.messages.locator(".content")).to_have_text(delivered)
    expect(alice.composer).to_be_focused()

    alice.composer.fill("Short version: ship it.")
    alice.composer.press("Enter")
    for person in (alice, bob):
        expect(person.messages.locator(".content")).to_have_text([*delivered, "Short version: ship it."])
    expect(alice.messages.last.locator(".sender")).to_have_text("Me")
    assert stored(server, "launch", too_long) == stored(server, "launch", also_too_long) == 0
