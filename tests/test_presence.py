"""Presence over the wire: join/leave with count, tabs, closing, /healthz figures.

One e-mail in several tabs (connections) is one participant: a ``presence``
``join`` when it gains its first connection, a ``leave`` when it loses its
last. "Nothing was sent" is proven by ordering: the observer's next frame is
the one a later event caused. The server notices a closed connection
asynchronously; ``health(...)`` waits for it.
"""

from __future__ import annotations

import pytest

from .conftest import make_settings
from .helpers import PRESENCE_KEYS, say_and_check


def presence(event: str, email: str, count: int) -> dict:
    return {"type": "presence", "event": event, "email": email, "count": count}


@pytest.mark.gen_test
async def test_join_is_announced_to_every_other_joined_connection(clients):
    a = await clients()
    await a.join("alice@example.com")
    lurker = await clients()  # connected, not joined: gets no presence
    b = await clients()
    await b.join("bob@example.com")
    frame = await a.expect("presence")
    assert set(frame) == PRESENCE_KEYS
    assert frame == presence("join", "bob@example.com", 2)
    c = await clients()
    await c.join("Carol@Example.com")
    assert await a.expect("presence") == presence("join", "Carol@example.com", 3)
    assert await b.expect("presence") == presence("join", "Carol@example.com", 3)
    # The joiners never got their own join, the lurker got nothing before
    # its joined: the next frames are these.
    joined = await lurker.join("dave@example.com")
    assert sorted(joined["participants"]) == [
        "Carol@example.com",
        "alice@example.com",
        "bob@example.com",
        "dave@example.com",
    ]
    for client in (a, b, c):
        assert await client.expect("presence") == presence("join", "dave@example.com", 4)


@pytest.mark.gen_test
async def test_leave_is_announced_when_a_connection_closes(clients, health):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    c = await clients()
    await c.join("carol@example.com")
    await a.expect_many("presence", 2)
    await b.expect("presence")
    await b.close()
    assert await a.expect("presence") == presence("leave", "bob@example.com", 2)
    assert await c.expect("presence") == presence("leave", "bob@example.com", 2)
    await c.close()
    assert await a.expect("presence") == presence("leave", "carol@example.com", 1)
    assert (await health(connections=1))["participants"] == 1
    # And back again: a fresh join.
    b2 = await clients()
    joined = await b2.join("bob@example.com")
    assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com"]
    assert await a.expect("presence") == presence("join", "bob@example.com", 2)


@pytest.mark.gen_test
async def test_two_tabs_are_one_participant(clients, health):
    a1 = await clients()
    await a1.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    assert await a1.expect("presence") == presence("join", "bob@example.com", 2)

    a2 = await clients()
    joined = await a2.join("alice@EXAMPLE.COM")  # the same address, typed differently
    assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com"]
    # No join for the second tab: b's next frame is carol's join, counted 3.
    c = await clients()
    await c.join("carol@example.com")
    assert await b.expect("presence") == presence("join", "carol@example.com", 3)
    assert await a1.expect("presence") == presence("join", "carol@example.com", 3)
    assert await a2.expect("presence") == presence("join", "carol@example.com", 3)

    # Closing one tab is no leave: b's next frame is dave's join, counted 4.
    await a1.close()
    await health(connections=3)
    d = await clients()
    await d.join("dave@example.com")
    assert await b.expect("presence") == presence("join", "dave@example.com", 4)
    assert await a2.expect("presence") == presence("join", "dave@example.com", 4)
    assert await c.expect("presence") == presence("join", "dave@example.com", 4)
    await say_and_check(a2, [b, c, d], "still here in tab 2", sender_email="alice@example.com")

    # Closing the last tab is the leave.
    await a2.close()
    for client in (b, c, d):
        assert await client.expect("presence") == presence("leave", "alice@example.com", 3)
    assert (await health(connections=3))["participants"] == 3


@pytest.mark.parametrize(
    "first, second",
    [("websocket", "xhr-polling"), ("xhr-streaming", "websocket"), ("xhr-polling", "xhr-streaming")],
)
@pytest.mark.gen_test
async def test_two_tabs_on_different_transports(connect, health, first, second):
    observer = await connect("raw-websocket")
    await observer.join("observer@example.com")
    a1 = await connect(first)
    await a1.join("alice@example.com")
    assert await observer.expect("presence") == presence("join", "alice@example.com", 2)
    a2 = await connect(second)
    await a2.join("alice@example.com")
    await say_and_check(a1, [a2, observer], "from the first tab")
    await say_and_check(a2, [a1, observer], "from the second tab")
    await a1.close()
    await health(connections=2)  # the observer and a2
    # a2 is still there: the observer's next frame is its message, not a leave.
    await say_and_check(a2, [observer], "the first tab is gone")
    await a2.close()
    assert await observer.expect("presence") == presence("leave", "alice@example.com", 1)


@pytest.mark.gen_test
async def test_closing_an_unjoined_connection_announces_nothing(clients, health):
    a = await clients()
    await a.join("alice@example.com")
    lurker = await clients()
    await health(connections=2, participants=1)
    await lurker.close()
    await health(connections=1, participants=1)
    b = await clients()
    await b.join("bob@example.com")
    assert await a.expect("presence") == presence("join", "bob@example.com", 2)


@pytest.mark.gen_test
async def test_a_failed_join_announces_nothing(clients):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.send({"type": "join", "email": "not an address"})
    assert (await b.expect("error"))["code"] == "invalid_email"
    await b.join("bob@example.com")
    assert await a.expect("presence") == presence("join", "bob@example.com", 2)


@pytest.mark.parametrize(
    "settings", [make_settings(disconnect_delay=0.5, heartbeat_delay=0.1)], ids=["disconnect_delay=0.5"]
)
@pytest.mark.gen_test
async def test_a_polling_client_that_stops_polling_leaves_when_its_session_expires(connect, settings, health):
    a = await connect()
    await a.join("alice@example.com")
    p = await connect("xhr-polling")
    await p.join("polly@example.com")
    assert await a.expect("presence") == presence("join", "polly@example.com", 2)
    await say_and_check(a, [p], "are you there?")
    p.abandon()  # no abort: the server only sees the polls stop
    assert await a.expect("presence") == presence("leave", "polly@example.com", 1)
    assert await health() == {"status": "ok", "connections": 1, "participants": 1}


# -- /healthz figures ----------------------------------------------------------


@pytest.mark.gen_test
async def test_healthz_counts_connections_and_participants(clients, health):
    assert await health() == {"status": "ok", "connections": 0, "participants": 0}
    a1 = await clients()
    assert await health(connections=1) == {"status": "ok", "connections": 1, "participants": 0}
    await a1.join("alice@example.com")
    assert await health() == {"status": "ok", "connections": 1, "participants": 1}
    a2 = await clients()
    await a2.join("alice@example.com")
    assert await health() == {"status": "ok", "connections": 2, "participants": 1}
    b = await clients()
    await b.join("bob@example.com")
    assert await health() == {"status": "ok", "connections": 3, "participants": 2}
    await a1.close()
    assert (await health(connections=2))["participants"] == 2
    await a2.close()
    assert (await health(connections=1))["participants"] == 1
    await b.close()
    assert (await health(connections=0))["participants"] == 0


# -- the leave frame ---------------------------------------------------------


@pytest.mark.gen_test
async def test_a_leave_frame_leaves_at_once_and_the_connection_can_join_again(clients, health):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    await a.expect("presence")
    await b.send({"type": "leave"})
    assert await a.expect("presence") == presence("leave", "bob@example.com", 1)
    assert await health(connections=2) == {"status": "ok", "connections": 2, "participants": 1}
    # Out: nothing of the room reaches it any more.
    await a.say("said after bob left")
    await b.nothing()
    # And in again, on the same connection, as someone else.
    joined = await b.join("carol@example.com")
    assert joined["participants"] == ["alice@example.com", "carol@example.com"]
    assert [m["content"] for m in joined["history"]] == ["said after bob left"]
    assert await a.expect("presence") == presence("join", "carol@example.com", 2)
    await say_and_check(b, [a], "carol here")


@pytest.mark.gen_test
async def test_a_leave_before_joining_or_twice_does_nothing(clients):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.send({"type": "leave", "ref": "l-1"})
    await b.join("bob@example.com")
    await b.send({"type": "leave"})
    await b.send({"type": "leave"})
    assert await a.expect("presence") == presence("join", "bob@example.com", 2)
    assert await a.expect("presence") == presence("leave", "bob@example.com", 1)
    await b.nothing()  # no reply, no error
    await a.nothing()


@pytest.mark.gen_test
async def test_a_leave_is_never_refused_as_too_fast(clients):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    await a.expect("presence")
    for _ in range(30):  # far past the frames a connection may send at once
        await b.send({"type": "history", "limit": 1})
    await b.send({"type": "leave", "ref": "bye"})
    frames = [await b.recv() for _ in range(30)]
    refused = [f for f in frames if f["type"] == "error"]
    assert refused and all(f["code"] == "rate_limited" and "ref" not in f for f in refused)
    assert await a.expect("presence") == presence("leave", "bob@example.com", 1)
    await b.nothing()
