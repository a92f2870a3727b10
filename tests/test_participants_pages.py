"""Who is here, in pages (protocol 2): ``joined`` lists the first 100 people
present and says how many there are; ``participants`` pages list them all,
by id. Protocol 1 lists everyone in ``joined``, as it always did.

The hub is tested with the real MemoryBackend and recording clients; the
last tests go through a real ``--auth link`` server.
"""

from __future__ import annotations

import asyncio

import pytest

from chatzilla import protocol
from chatzilla.frames import LISTED, V1, V2, Wire
from chatzilla.hub import Hub
from chatzilla.identity import Person
from chatzilla.protocol import ProtocolError

from .conftest import make_settings
from .test_hub import Recorder
from .test_presence_batches import _bots, _hub, _join

CROWD = [Person(f"p{i:04d}", f"person{i}@example.com", f"Person {i}") for i in range(250)]


async def _crowd(hub: Hub, people: list[Person], wire: Wire = V2) -> list[Recorder]:
    """``people`` joined one after another (in a shuffled order of ids),
    everything sent to them so far taken."""
    clients = [await _join(hub, person, wire) for person in people]
    for _ in range(5):
        await asyncio.sleep(0)
    for client in clients:
        client.take()
    return clients


def _pages(hub: Hub, client: Recorder) -> tuple[list[dict], list[str]]:
    """Every ``participants`` page from the first, and the ids they listed."""
    pages, after = [], None
    while True:
        hub.participants(client, after)
        (page,) = [f for f in client.take() if f["type"] == "participants"]
        pages.append(page)
        if not page["more"]:
            return pages, [p["id"] for page in pages for p in page["people"]]
        after = page["people"][-1]["id"]


def test_protocol_2_joined_lists_the_first_people_present_and_how_many_there_are():
    # Ids out of the order of arrival: the joined lists arrivals, pages ids.
    arrivals = CROWD[1::2] + CROWD[::2]

    async def scenario():
        hub = _hub(V2)
        await _crowd(hub, arrivals[:-1])
        return (await _join(hub, arrivals[-1])).take()

    (joined,) = asyncio.run(scenario())
    assert joined["present"] == len(CROWD)
    assert len(joined["participants"]) == LISTED == 100
    assert joined["participants"] == [p.public() for p in arrivals[:LISTED]]
    assert joined["you"] == arrivals[-1].public()


def test_a_small_room_lists_everyone_and_protocol_1_lists_everyone_whatever_the_crowd():
    async def scenario():
        small, crowded = _hub(V2), _hub(V1)
        await _crowd(small, CROWD[:2])
        await _crowd(crowded, CROWD[:-1], V1)
        return (await _join(small, CROWD[2])).take(), (await _join(crowded, CROWD[-1], V1)).take()

    (small,), (crowded,) = asyncio.run(scenario())
    assert small["participants"] == [p.public() for p in CROWD[:3]] and small["present"] == 3
    assert crowded["participants"] == [p.email for p in CROWD]
    assert "present" not in crowded  # version 1's joined is as it was


def test_pages_list_everyone_present_by_id_once():
    async def scenario():
        hub = _hub(V2)
        clients = await _crowd(hub, CROWD[::-1])
        return _pages(hub, clients[0])

    pages, ids = asyncio.run(scenario())
    assert ids == sorted(p.id for p in CROWD)  # each once, in the order of ids
    assert [len(page["people"]) for page in pages] == [100, 100, 50]
    assert [page["more"] for page in pages] == [True, True, False]
    assert {page["present"] for page in pages} == {250}
    assert "after" not in pages[0] and pages[1]["after"] == pages[0]["people"][-1]["id"]
    assert pages[0]["people"][0] == CROWD[0].public()


def test_pages_follow_who_came_and_went_since_the_joined():
    async def scenario():
        hub = _hub(V2)
        clients = await _crowd(hub, CROWD[:200])
        watcher = clients[0]
        first, _ = _pages(hub, watcher)
        # Ten leave (no grace period), twenty come, after the watcher's joined.
        for client in clients[100:110]:
            hub.leave(client)
        await _crowd(hub, CROWD[200:220])
        return first, _pages(hub, watcher), hub

    first, (pages, ids), _ = asyncio.run(scenario())
    assert first[0]["present"] == 200
    expected = sorted(p.id for p in CROWD[:100] + CROWD[110:220])
    assert ids == expected and {page["present"] for page in pages} == {210}


def test_a_page_after_an_id_nobody_has_starts_after_where_it_would_be():
    async def scenario():
        hub = _hub(V2)
        clients = await _crowd(hub, CROWD[:10])
        hub.participants(clients[0], "p0004z")  # between p0004 and p0005: one who left, say
        hub.participants(clients[0], "zzz")
        return clients[0].take()

    middle, end = asyncio.run(scenario())
    assert [p["id"] for p in middle["people"]] == [p.id for p in CROWD[5:10]] and not middle["more"]
    assert end == {"type": "participants", "after": "zzz", "people": [], "present": 10, "more": False}


def test_asking_who_is_here_before_joining_is_refused():
    async def scenario():
        hub = _hub(V2)
        client = Recorder("early")
        hub.open(client)
        with pytest.raises(ProtocolError) as refused:
            hub.participants(client, None)
        return refused.value.code

    assert asyncio.run(scenario()) == "not_joined"


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ('{"type": "participants"}', 1),  # version 1 has no such frame
        ('{"type": "participants", "after": 5}', 2),
        ('{"type": "participants", "after": "' + "p" * 65 + '"}', 2),
    ],
)
def test_a_bad_participants_frame_is_a_bad_frame(text, version):
    with pytest.raises(ProtocolError) as refused:
        protocol.parse_frame(text, version)
    assert refused.value.code == "bad_frame"


def test_a_participants_frame_parses():
    assert protocol.parse_frame('{"type": "participants", "ref": "r"}', 2) == protocol.Participants(None, "r")
    assert protocol.parse_frame('{"type": "participants", "after": "p1"}', 2) == protocol.Participants("p1")


# -- over a real server ------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    return make_settings(auth="link", storage="sqlite", db=str(tmp_path / "chatzilla.db"), rate_limit=0.0)


@pytest.mark.gen_test(timeout=60)
async def test_a_page_of_who_is_here_over_a_real_server(app, connect):
    people = await _bots(app, 3)
    clients = [await connect("websocket") for _ in people]
    await clients[0].send({"type": "participants", "ref": "early"})
    refused = await clients[0].expect("error")
    assert (refused["code"], refused["ref"]) == ("not_joined", "early")
    for client, (_, token) in zip(clients, people, strict=True):
        await client.send({"type": "join", "token": token})
        joined = await client.expect("joined")
    assert joined["present"] == 3 and len(joined["participants"]) == 3
    await clients[2].send({"type": "participants"})
    page = await clients[2].expect("participants")
    assert page == {
        "type": "participants",
        "people": sorted((p.public() for p, _ in people), key=lambda p: p["id"]),
        "present": 3,
        "more": False,
    }
    await clients[2].send({"type": "participants", "after": 7})
    assert (await clients[2].expect("error"))["code"] == "bad_frame"


def test_the_list_by_id_follows_every_change_as_a_fresh_sort_would():
    """hub._Present keeps the list a page reads and applies changes to it one
    by one (sorting a room of 10,000 again took 35-40 ms of the loop for
    each page asked after a change): after any mix of joins, leaves, pages
    and later joins' lists, it is what sorting everyone present gives."""
    import random

    from chatzilla.chat import PresenceChange
    from chatzilla.hub import _Present

    def id_of(key: str) -> str:
        return f"id-{key[::-1]}"  # an order unlike the keys'

    rng = random.Random(7)
    people = [f"p{n}" for n in range(60)]
    present = _Present(people[:20], 1)
    here = dict.fromkeys(people[:20])
    version = 1
    for step in range(2000):
        roll = rng.random()
        if roll < 0.4:
            version += 1
            key = rng.choice(people)
            event = "join" if rng.random() < 0.5 else "leave"
            present.heard(PresenceChange(event, key, 0, version))
            if event == "join":
                here[key] = None
            else:
                here.pop(key, None)
        elif roll < 0.45:
            # A later join's list from the backend (as of now).
            present = present.renewed(list(here), version)
        else:
            assert present.ordered(id_of) == sorted((id_of(k), k) for k in here), step
