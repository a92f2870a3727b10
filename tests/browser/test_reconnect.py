"""A restarted server: the page says so, comes back by itself, rejoins and
sends what was typed meanwhile; nobody is told that anyone left or came."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from chatzilla.privacy import email_hash

from .helpers import wait_until

# The test stops its server and starts another on its port.
pytestmark = [pytest.mark.browser, pytest.mark.own_server]

#: The page retries after about 0.5 s, 1 s, 2 s, 4 s... (+-25% jitter).
RECONNECT_TIMEOUT = 15_000
#: The restarted server's presence grace period (the default): everyone is
#: back within it, so nobody is told that anyone left.
GRACE = 8.0


# One transport per way of receiving: a WebSocket, a streaming response, an
# EventSource, XHR long polling, JSONP long polling. (The iframe transports
# wrap eventsource and xhr-polling; test_signin's transports test covers them.)
TRANSPORTS = ["websocket", "xhr-streaming", "eventsource", "xhr-polling", "jsonp-polling"]


def test_pages_reconnect_and_rejoin_after_a_server_restart(people, server, start_server, subtests):
    """One restart for every transport: on each, two people in a room of
    its own (a subtest each once the server is back)."""
    people.allow_network_errors = True  # refused connections while the server is down
    pairs = {}
    for transport in TRANSPORTS:
        room = f"r/{transport}"
        alice = people(f"alice-{transport}@example.com", transport=transport, path=room)
        bob = people(f"bob-{transport}@example.com", transport=transport, path=room)
        alice.say("before the restart")
        bob.sees(alice.email, "before the restart")
        pairs[transport] = (alice, bob)

    everyone = [person for pair in pairs.values() for person in pair]
    told = [notices(person).count() for person in everyone]
    server.stop()  # SIGTERM; asserts exit status 0
    for alice, bob in pairs.values():
        for person in (alice, bob):
            expect(person.status).to_have_text("Reconnecting…")
            expect(person.status).to_be_visible()
        # Sending while down shows the message as pending at once; it goes
        # out after the rejoin.
        alice.composer.fill("said while the server was down")
        alice.composer.press("Enter")
        expect(alice.composer).to_have_value("")
        pending = alice.message("said while the server was down")
        expect(pending).to_have_class(re.compile(r"\bpending\b"))
        expect(pending.locator(".sender")).to_have_text("Me")
        expect(pending.locator(".state")).to_have_text("sending…")

    restarted = start_server(server.port, "--presence-grace", str(GRACE))
    started = time.monotonic()
    assert restarted.port == server.port
    for transport, (alice, bob) in pairs.items():
        with subtests.test(transport=transport):
            back_as_before(restarted, transport, alice, bob)

    # Past the grace period, nobody was told that anyone left or came.
    with subtests.test("nobody was told"):
        left = started + GRACE + 1.5 - time.monotonic()
        if left > 0:
            everyone[0].page.wait_for_timeout(left * 1000)
        for person, before in zip(everyone, told, strict=True):
            expect(notices(person)).to_have_count(before)
            expect(person.count).to_have_text("2")


def notices(person):
    """Every notice in the person's conversation, whatever it says."""
    return person.page.locator("#messages li.notice")


def back_as_before(restarted, transport: str, alice, bob) -> None:
    for person in (alice, bob):
        expect(person.status).to_have_text("Connected", timeout=RECONNECT_TIMEOUT)
        expect(person.count).to_have_text("2")
        # Still in the chat, not sent back to the join form.
        expect(person.page.locator("#join-form")).to_be_hidden()
        assert person.transport() == transport
    # Back as who they were, within the presence grace period: no join.
    # (Logs name people by a hash of their address.) "Connected" and the
    # count of before show as the connection opens, before the rejoin.
    alice_id, bob_id = email_hash(alice.email), email_hash(bob.email)
    for who in (alice_id, bob_id):
        wait_until(
            alice.page, lambda who=who: f"back {who}" in restarted.log(), timeout=RECONNECT_TIMEOUT / 1000
        )
    assert f"join {alice_id}" not in restarted.log()

    # The pending message was delivered, once; chatting works again, both
    # ways, as the same people.
    bob.sees(alice.email, "said while the server was down")
    alice.sees(alice.email, "said while the server was down", mine=True)
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)
    expect(alice.page.locator("#composer-error")).to_be_hidden()
    bob.say("after the restart")
    alice.sees(bob.email, "after the restart")
    # Earlier messages stay on screen; none is repeated.
    expect(alice.messages.locator(".content")).to_have_text(
        ["before the restart", "said while the server was down", "after the restart"]
    )
    expect(bob.messages.locator(".content")).to_have_text(
        ["before the restart", "said while the server was down", "after the restart"]
    )
