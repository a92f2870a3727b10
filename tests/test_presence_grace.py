"""The presence grace period: a person whose last connection closes stays
present for ``presence_grace`` seconds. Back within it (a reload, a room
switch and back, a restart of the server) nobody hears anything; gone for
longer, the room hears they left, once, when it ends. A ``leave`` frame is
heard at once. The hub on the embedded backends here, and over the wire;
Redis, across processes: tests/test_redis.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.retention import Retention
from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.hub import Hub

from .conftest import make_settings
from .test_hub import Recorder

#: Long enough for a rejoin on a machine busy with parallel test workers (0.3 s
#: was not at a load of 30).
GRACE = 1.0


def presence(frames: list[str]) -> list[tuple[str, str, int]]:
    return [(f["event"], f["email"], f["count"]) for f in map(json.loads, frames) if f["type"] == "presence"]


def hub_on(backend) -> Hub:
    return Hub(backend, history_limit=50, max_content=2000)


async def joined(hub: Hub, name: str, email: str, room: str = "lobby") -> Recorder:
    client = Recorder(name)
    hub.open(client)
    await hub.join(client, email, room)
    return client


def test_back_within_the_grace_period_nobody_hears_a_thing():
    async def scenario():
        hub = hub_on(MemoryBackend(Retention(messages=10), grace=GRACE))
        bob = await joined(hub, "bob", "bob@example.com")
        alice = await joined(hub, "alice", "alice@example.com")
        bob.texts.clear()
        hub.close(alice)  # a reload
        await asyncio.sleep(GRACE / 3)
        again = await joined(hub, "alice again", "alice@example.com")
        assert json.loads(again.texts[0])["participants"] == ["bob@example.com", "alice@example.com"]
        # A room switch and back, the same.
        hub.close(again)
        await joined(hub, "alice in dev", "alice@example.com", "dev")
        await asyncio.sleep(GRACE / 3)
        await joined(hub, "alice back", "alice@example.com")
        await asyncio.sleep(GRACE * 2)
        return bob

    bob = asyncio.run(scenario())
    assert presence(bob.texts) == []


def test_gone_for_longer_the_room_hears_it_once_when_the_grace_period_ends():
    async def scenario():
        hub = hub_on(MemoryBackend(Retention(messages=10), grace=GRACE))
        bob = await joined(hub, "bob", "bob@example.com")
        tab1 = await joined(hub, "tab1", "alice@example.com")
        tab2 = await joined(hub, "tab2", "alice@example.com")
        bob.texts.clear()
        hub.close(tab1)  # another tab still open: nothing at all
        await asyncio.sleep(GRACE * 1.5)
        assert presence(bob.texts) == []
        closed = time.monotonic()
        hub.close(tab2)
        await asyncio.sleep(GRACE * 0.6)
        assert presence(bob.texts) == []
        # Still counted for someone arriving meanwhile.
        carol = await joined(hub, "carol", "carol@example.com")
        assert json.loads(carol.texts[0])["participants"] == [
            "bob@example.com",
            "alice@example.com",
            "carol@example.com",
        ]
        while not presence(carol.texts):
            await asyncio.sleep(0.01)
        return bob, carol, time.monotonic() - closed

    bob, carol, after = asyncio.run(scenario())
    # Not before the period ends; soon after it (a busy machine runs late).
    assert GRACE <= after < GRACE + 1.0
    assert presence(bob.texts) == [("join", "carol@example.com", 3), ("leave", "alice@example.com", 2)]
    assert presence(carol.texts) == [("leave", "alice@example.com", 2)]


def test_a_leave_frame_is_heard_at_once():
    async def scenario():
        hub = hub_on(MemoryBackend(Retention(messages=10), grace=60))
        bob = await joined(hub, "bob", "bob@example.com")
        alice = await joined(hub, "alice", "alice@example.com")
        bob.texts.clear()
        hub.leave(alice)
        return bob

    assert presence(asyncio.run(scenario()).texts) == [("leave", "alice@example.com", 1)]


def test_after_a_restart_the_people_who_were_here_are_expected_back(tmp_path):
    """SQLite: a clean shutdown writes down who is present; after the start,
    each one is present, with no connection, for the grace period."""
    path = str(tmp_path / "chatzilla.db")

    async def before():
        backend = SQLiteBackend(path, grace=60)
        hub = hub_on(backend)
        for name in ("alice", "bob", "carol"):
            await joined(hub, name, f"{name}@example.com", "dev")
        await joined(hub, "dave", "dave@example.com")
        hub.close_all(3001, "Server shutting down")
        await backend.close()

    async def after():
        backend = SQLiteBackend(path, grace=GRACE)
        hub = hub_on(backend)
        # Alice is back first: she sees everyone who was here, nobody joins.
        alice = await joined(hub, "alice", "alice@example.com", "dev")
        first = json.loads(alice.texts[0])
        bob = await joined(hub, "bob", "bob@example.com", "dev")
        await asyncio.sleep(GRACE * 2)
        await backend.close()
        return first, alice, bob

    asyncio.run(before())
    first, alice, bob = asyncio.run(after())
    assert first["participants"] == ["alice@example.com", "bob@example.com", "carol@example.com"]
    # Carol did not come back: she leaves once her grace period is over.
    assert presence(alice.texts[1:]) == [("leave", "carol@example.com", 2)]
    assert presence(bob.texts[1:]) == [("leave", "carol@example.com", 2)]


def test_without_a_grace_period_a_restart_remembers_nobody(tmp_path):
    path = str(tmp_path / "chatzilla.db")

    async def run(email: str) -> dict:
        backend = SQLiteBackend(path, grace=0)
        hub = hub_on(backend)
        client = await joined(hub, "client", email)
        hub.close_all(3001, "Server shutting down")
        await backend.close()
        return json.loads(client.texts[0])

    asyncio.run(run("alice@example.com"))
    assert asyncio.run(run("bob@example.com"))["participants"] == ["bob@example.com"]


# -- over the wire --------------------------------------------------------------


#: Long enough for a client to close and another to join on a busy machine
#: (0.5 s was not, with parallel test workers).
WIRE_GRACE = 2.0


@pytest.mark.parametrize("settings", [make_settings(presence_grace=WIRE_GRACE)], ids=["grace=2"])
@pytest.mark.gen_test(timeout=20)
async def test_a_reconnection_within_the_grace_period_over_the_wire(clients, settings, health):
    bob = await clients()
    await bob.join("bob@example.com")
    alice = await clients()
    await alice.join("alice@example.com")
    assert (await bob.expect("presence"))["event"] == "join"
    await alice.close()
    await health(connections=1)
    again = await clients()
    joined = await again.join("alice@example.com")
    assert joined["participants"] == ["bob@example.com", "alice@example.com"]
    await bob.nothing(wait=WIRE_GRACE + 0.5)  # past the grace period: nothing
    await again.close()
    leave = await bob.expect("presence")
    assert (leave["event"], leave["email"], leave["count"]) == ("leave", "alice@example.com", 1)
