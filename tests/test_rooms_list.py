"""The list of rooms (docs/protocol.md, "A list of rooms"): the Backend's
active rooms on every backend, unread counts, and the ``rooms`` frame over a
real server on every backend. Private rooms are test_moderation's."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from chatzilla.backends import postgres
from chatzilla.backends.sqlite import QUERIES, connect, migrate
from chatzilla.protocol import MAX_ROOMS_ASKED
from chatzilla.rooms_list import ACTIVE_ROOMS, MAX_UNREAD, unread

from .test_backend_contract import make_backend  # noqa: F401  (the fixture)
from .test_message_changes import settings  # noqa: F401  (the fixture: every backend)


def test_unread_is_what_came_after_the_last_seen_at_most_a_hundred():
    assert unread(41, 44) == 3
    assert unread(44, 44) == 0
    assert unread(0, 5000) == MAX_UNREAD == 100
    # Seen past the newest: the room started again (memory storage restarted).
    assert unread(90, 4) == 4


def test_active_rooms_are_those_with_the_newest_messages(make_backend):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        backend.start(lambda *_: None, lambda *_: None)
        try:
            empty = await backend.active(5)
            await backend.enter("quiet", "a@example.com", "tab")  # present, never a message
            stamps = {}
            for room in ("old", "middle", "new", "old"):
                message, _ = await backend.append(room, "a@example.com", "hi " + room, None, "tab")
                stamps[room] = message.ts
            return empty, await backend.active(5), await backend.active(2), stamps
        finally:
            await backend.close()

    empty, five, two, stamps = asyncio.run(scenario())
    assert empty == []
    assert [room for room, _ in five] == ["old", "new", "middle"]
    assert dict(five) == pytest.approx(stamps)
    assert [room for room, _ in two] == ["old", "new"]


@pytest.mark.gen_test(timeout=60)
async def test_the_rooms_frame_counts_unread_and_lists_active_rooms(connect):
    alice = await connect()
    await alice.send({"type": "rooms", "ref": "r0"})
    refused = await alice.expect("error")
    assert (refused["code"], refused["ref"]) == ("not_joined", "r0")
    await alice.join("alice@example.com")
    first = await alice.say("one")
    for _ in range(4):
        await alice.say("more")
    bob = await connect()
    await bob.send({"type": "join", "email": "bob@example.com", "room": "dev"})
    await bob.expect("joined")
    await bob.say("dev news")
    await bob.send({"type": "rooms", "seen": {"lobby": first["id"], "dev": 0, "nobody-here": 7}, "ref": "r1"})
    answer = await bob.expect("rooms")
    assert answer["ref"] == "r1"
    assert answer["rooms"] == [
        {"room": "lobby", "unread": 4, "last": first["id"] + 4},
        {"room": "dev", "unread": 1, "last": 1},
        {"room": "nobody-here", "unread": 0, "last": 0},
    ]
    assert [room["room"] for room in answer["active"]] == ["dev", "lobby"]
    assert all(isinstance(room["ts"], float) for room in answer["active"])
    # Without `seen`: the active rooms alone.
    await alice.send({"type": "rooms"})
    alone = await alice.expect("rooms")
    assert alone["rooms"] == [] and [r["room"] for r in alone["active"]] == ["dev", "lobby"]
    for frame, code in (
        ({"seen": []}, "bad_frame"),
        ({"seen": {"dev": -1}}, "bad_frame"),
        ({"seen": {"dev": "3"}}, "bad_frame"),
        ({"seen": {f"r{i}": 0 for i in range(MAX_ROOMS_ASKED + 1)}}, "bad_frame"),
        ({"seen": {"Dev Room": 0}}, "invalid_room"),
    ):
        await alice.send({"type": "rooms", **frame, "ref": "bad"})
        error = await alice.expect("error")
        assert (error["code"], error["ref"]) == (code, "bad"), frame


@pytest.mark.gen_test(timeout=60)
async def test_at_most_ten_active_rooms_newest_first(connect, settings):  # noqa: F811
    client = await connect()
    await client.join("alice@example.com")
    rooms = [f"room-{i:02}" for i in range(ACTIVE_ROOMS + 2)]
    for room in rooms:
        speaker = await connect()
        await speaker.send({"type": "join", "email": "alice@example.com", "room": room})
        await speaker.expect("joined")
        await speaker.say("hello " + room)
        await speaker.close()
    await client.send({"type": "rooms", "seen": {room: 0 for room in rooms[:3]}})
    answer = await client.expect("rooms")
    assert [r["room"] for r in answer["active"]] == rooms[::-1][:ACTIVE_ROOMS]
    assert [(r["room"], r["unread"]) for r in answer["rooms"]] == [(room, 1) for room in rooms[:3]]


def test_an_older_sqlite_file_knows_its_active_rooms_once_upgraded(tmp_path):
    con = connect(str(tmp_path / "old.db"))
    migrate(con, upto=13)  # before rooms had their last activity
    for room, ts in (("old", 1000.0), ("newer", 2000.0)):
        con.execute(QUERIES["insert"], (room, 1, "a@example.com", "hi", ts - 1, None, 0))
        con.execute(QUERIES["insert"], (room, 2, "a@example.com", "hi", ts, None, 0))
        con.execute(QUERIES["set_last_id"], (room, 2))
    migrate(con)
    assert con.execute(QUERIES["active"], (5,)).fetchall() == [("newer", 2000.0), ("old", 1000.0)]
    con.close()


def test_an_older_postgres_database_knows_its_active_rooms_once_upgraded(empty_database_url):
    async def scenario():
        con = await asyncpg.connect(empty_database_url)
        try:
            await postgres.migrate(con, upto=11)  # before rooms had their last activity
            for room, ts in (("old", 1000.0), ("newer", 2000.0)):
                await con.execute("INSERT INTO rooms (room, last_id) VALUES ($1, 2)", room)
                for message_id in (1, 2):
                    await con.execute(
                        "INSERT INTO messages (room, id, sender, content, ts) VALUES ($1, $2, 'a', 'hi', $3)",
                        room,
                        message_id,
                        ts - 2 + message_id,
                    )
            await postgres.migrate(con)
        finally:
            await con.close()
        backend = postgres.PostgresBackend(empty_database_url)
        await backend.open()
        try:
            return await backend.active(5)
        finally:
            await backend.close()

    assert asyncio.run(scenario()) == [("newer", 2000.0), ("old", 1000.0)]
