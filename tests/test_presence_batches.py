"""Presence in batches (protocol 2): the arrivals and departures of one loop
turn share one ``presence`` frame; protocol 1 sends each as it comes.

The hub is tested with the real MemoryBackend and recording clients; the
last test joins a crowd of bots to a real ``--auth link`` server at once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chatzilla.backends.memory import MemoryBackend
from chatzilla.chat import PresenceChange
from chatzilla.frames import V1, V2, Wire
from chatzilla.hub import Hub
from chatzilla.identity import Person, new_person_id
from chatzilla.signin import TOKEN_PREFIX, digest, new_secret

from .conftest import make_settings
from .test_hub import Recorder

ALICE, BOB, CAROL, DAVE = (
    Person(f"p{i}", f"{name}@example.com", name.title())
    for i, name in enumerate(("alice", "bob", "carol", "dave"))
)


def _hub(wire: Wire) -> Hub:
    return Hub(MemoryBackend(), history_limit=50, max_content=2000, wire=wire)


def _key(person: Person, wire: Wire) -> str:
    return person.key() if wire is V2 else person.email


async def _join(hub: Hub, person: Person, wire: Wire = V2) -> Recorder:
    client = Recorder(person.name)
    hub.open(client)
    if wire is V2:
        await hub.join(client, None, verified=person.key())
    else:
        await hub.join(client, person.email)
    return client


async def _settled(hub: Hub, wire: Wire, *people: Person) -> list[Recorder]:
    """``people`` joined one after another, everything sent to them so far taken."""
    clients = [await _join(hub, person, wire) for person in people]
    await _turns()
    for client in clients:
        client.take()
    return clients


async def _turns(n: int = 5) -> None:
    """Let the loop run a few turns (the end of one flushes its batch)."""
    for _ in range(n):
        await asyncio.sleep(0)


def _changes(frames: list[dict]) -> list[tuple[str, str, int]]:
    """(event, person's name, count) of every presence change in ``frames``."""
    out = []
    for frame in frames:
        if frame["type"] == "presence":
            for change in frame.get("changes", [frame]):
                who = change["person"]["name"] if "person" in change else change["email"]
                out.append((change["event"], who, change["count"]))
    return out


def test_protocol_2_sends_the_arrivals_of_one_turn_in_one_frame():
    async def scenario():
        hub = _hub(V2)
        (alice,) = await _settled(hub, V2, ALICE)
        bob, carol = await asyncio.gather(_join(hub, BOB, V2), _join(hub, CAROL, V2))
        await _turns()
        return alice.take(), bob.take(), carol.take()

    alice, bob, carol = asyncio.run(scenario())
    assert alice == [
        {
            "type": "presence",
            "changes": [
                {"event": "join", "person": BOB.public(), "count": 2},
                {"event": "join", "person": CAROL.public(), "count": 3},
            ],
        }
    ]
    # Neither hears of its own arrival; bob, in the room before carol came,
    # hears of hers after his joined (a batch of one is the single frame).
    assert [f["type"] for f in carol] == ["joined"]
    assert [f["type"] for f in bob] == ["joined", "presence"]
    assert bob[1] == {"type": "presence", "event": "join", "person": CAROL.public(), "count": 3}


def test_protocol_1_still_sends_each_change_in_a_frame_of_its_own():
    async def scenario():
        hub = _hub(V1)
        (alice,) = await _settled(hub, V1, ALICE)
        await asyncio.gather(_join(hub, BOB, V1), _join(hub, CAROL, V1))
        await _turns()
        return alice.take()

    assert asyncio.run(scenario()) == [
        {"type": "presence", "event": "join", "email": "bob@example.com", "count": 2},
        {"type": "presence", "event": "join", "email": "carol@example.com", "count": 3},
    ]


def test_a_batch_goes_out_before_any_later_frame_of_its_room():
    async def scenario():
        hub = _hub(V2)
        alice, carol = await _settled(hub, V2, ALICE, CAROL)
        # Bob arrives, and in the same turn alice speaks: everyone else
        # hears of bob first, as they would have without batches.
        await asyncio.gather(_join(hub, BOB, V2), hub.say(alice, "hello", "r1"))
        hub.typing(alice)
        await _turns()
        return carol.take()

    assert [f["type"] for f in asyncio.run(scenario())] == ["presence", "message", "typing"]


def test_who_comes_into_the_room_after_a_change_of_the_turn_does_not_hear_of_it():
    async def scenario():
        hub = _hub(V2)
        alice, bob = await _settled(hub, V2, ALICE, BOB)
        hub.leave(bob)  # announced now, sent at the end of the turn
        carol = await _join(hub, CAROL, V2)
        await _turns()
        return alice.take(), carol.take()

    alice, carol = asyncio.run(scenario())
    assert _changes(alice) == [("leave", "Bob", 1), ("join", "Carol", 2)]
    assert [f["type"] for f in carol] == ["joined"]
    assert [p["name"] for p in carol[0]["participants"]] == ["Alice", "Carol"]


def test_the_changes_of_a_turn_keep_their_order_and_counts():
    async def scenario():
        hub = _hub(V2)
        alice, bob = await _settled(hub, V2, ALICE, BOB)
        hub.leave(bob)
        dave = await _join(hub, DAVE, V2)
        hub.leave(dave)
        await _turns()
        return alice.take()

    frames = asyncio.run(scenario())
    assert len(frames) == 1
    assert _changes(frames) == [("leave", "Bob", 1), ("join", "Dave", 2), ("leave", "Dave", 1)]


def test_a_batch_is_in_the_order_of_the_changes_however_they_arrived():
    # Where processes share a room, their changes may arrive out of order
    # (two grace periods ending at once, their Redis answers crossing): the
    # batch still ends with the room's count.
    async def scenario():
        backend = MemoryBackend()
        hub = Hub(backend, history_limit=50, max_content=2000, wire=V2)
        (alice,) = await _settled(hub, V2, ALICE)
        announce = backend._announce  # as a shared backend announces another process's news
        announce("lobby", PresenceChange("join", BOB.key(), 2, 101), None)
        announce("lobby", PresenceChange("leave", BOB.key(), 2, 103), None)
        announce("lobby", PresenceChange("join", CAROL.key(), 3, 102), None)
        await _turns()
        return alice.take()

    frames = asyncio.run(scenario())
    assert _changes(frames) == [("join", "Bob", 2), ("join", "Carol", 3), ("leave", "Bob", 2)]


# -- over a real server ------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    return make_settings(auth="link", storage="sqlite", db=str(tmp_path / "chatzilla.db"), rate_limit=0.0)


async def _bots(app, n: int) -> list[tuple[Person, str]]:
    """``n`` people, each with a bot token, in the app's accounts."""
    accounts = app.signin.accounts
    people = []
    for i in range(n):
        person = await accounts.add_person(Person(new_person_id(), f"bot{i}@example.com", f"Bot {i}"))
        token = TOKEN_PREFIX + new_secret()
        await accounts.add_token(digest(token), person.id, "test", time.time())
        people.append((person, token))
    return people


@pytest.mark.gen_test(timeout=60)
async def test_a_crowd_joining_at_once_is_announced_once_each(app, connect):
    people = await _bots(app, 12)
    watcher = await connect("websocket")
    await watcher.send({"type": "join", "token": people[0][1]})
    await watcher.expect("joined")

    crowd = [await connect("websocket") for _ in people[1:]]
    for client, (_, token) in zip(crowd, people[1:], strict=True):
        await client.send({"type": "join", "token": token})
    for client in crowd:
        await client.expect("joined")

    heard: list[tuple[str, str, int]] = []
    while len(heard) < len(crowd):
        heard += _changes([await watcher.expect("presence")])
    assert sorted(name for _, name, _ in heard) == sorted(p.name for p, _ in people[1:])
    assert {event for event, _, _ in heard} == {"join"}
    assert [count for _, _, count in heard] == list(range(2, 2 + len(crowd)))
    await watcher.nothing()


@pytest.mark.gen_test(timeout=60)
async def test_everyone_in_a_crowd_joining_at_once_hears_only_of_those_their_joined_left_out(app, connect):
    # Each join waits on the moderation store between coming into the room
    # and being counted present, so the crowd's joins interleave: a joined
    # that counts someone must not be followed by that person's join.
    people = await _bots(app, 10)
    crowd = [await connect("websocket") for _ in people]
    for client, (_, token) in zip(crowd, people, strict=True):
        await client.send({"type": "join", "token": token})
    for client, (me, _) in zip(crowd, people, strict=True):
        joined = await client.expect("joined")
        present = {p["name"] for p in joined["participants"]}
        while len(present) < len(people):
            for event, name, count in _changes([await client.expect("presence")]):
                assert event == "join" and name not in present, (me.name, event, name, present)
                present.add(name)
                assert count == len(present), (me.name, name, count, present)
    for client in crowd:
        await client.nothing(0.1)
