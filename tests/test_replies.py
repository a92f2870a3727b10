"""Replies (docs/protocol.md, "Replies"): a message may name the message of
the room it answers (``reply_to``); its frames carry that id and ``reply``,
what it quotes of the original as that one is when the frame is made. The
domain rule, the Backend contract, then the frames over a real server on
every backend (a catch-up after being offline included), across two
processes, and databases of an earlier schema."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from chatzilla.backends import postgres as postgres_backend
from chatzilla.backends import sqlite as sqlite_backend
from chatzilla.chat import EDIT, EXCERPT, Change, Message, Quote, parse_quote, quote_of, quote_text
from chatzilla.frames import V1, V2
from chatzilla.identity import Person

from .sockjs_client import WebSocketClient, XhrPollingClient
from .test_backend_contract import make_backend  # noqa: F401  (the fixture)
from .test_message_changes import settings  # noqa: F401  (the fixture: every backend)
from .test_redis import prefix, redis_url, servers, shared  # noqa: F401  (fixtures)


async def _next(client, kind: str, **expected) -> dict:
    """The next frame but presence (people come and go), of type ``kind``
    with the ``expected`` fields."""
    frame = await client.recv()
    while frame["type"] == "presence":
        frame = await client.recv()
    assert frame["type"] == kind, frame
    for name, value in expected.items():
        assert frame.get(name) == value, (name, frame)
    return frame


async def _answered(client, ref: str, **expected) -> dict:
    """The answer (with ``ref``) of the two ``changed`` frames a changer's
    connection gets, in either order."""
    frames = [await _next(client, "changed", **expected), await _next(client, "changed", **expected)]
    assert sorted(f.get("ref", "") for f in frames) == ["", ref], frames
    return next(f for f in frames if "ref" in f)


# -- the domain rule -----------------------------------------------------------


def test_a_quote_is_the_start_of_the_text_on_one_line():
    original = Message(3, "a@example.com", "first line\n\n  second\tline", 1.0)
    assert quote_of(original) == Quote("a@example.com", "first line second line")
    long = Message(3, "a@example.com", "word " * 60, 1.0)
    excerpt = quote_of(long).excerpt
    assert len(excerpt) <= EXCERPT and excerpt.endswith("…") and not excerpt.endswith(" …")
    emoji = Message(3, "a@example.com", "😀" * 500, 1.0)
    assert quote_of(emoji).excerpt == "😀" * (EXCERPT - 1) + "…"


def test_a_deleted_original_is_quoted_without_text():
    deleted = Message(3, "a@example.com", "", 1.0, rev=2, deleted=True)
    assert quote_of(deleted) == Quote("a@example.com", "", True)
    assert quote_of(deleted).frame() == {"sender": "a@example.com", "excerpt": "", "deleted": True}


def test_a_reply_frame_names_the_original_and_a_plain_message_is_version_1s():
    reply = Message(9, "b@example.com", "yes", 2.0, reply_to=3, quote=Quote("a@example.com", "lunch?"))
    assert V1.message(reply)["reply_to"] == 3
    assert V1.message(reply)["reply"] == {"sender": "a@example.com", "excerpt": "lunch?"}
    # Read where the original could not be (retention removed it): the id alone.
    assert "reply" not in V1.message(Message(9, "b@example.com", "yes", 2.0, reply_to=3))
    assert set(V1.message(Message(1, "a@example.com", "hi", 1.0))) == {
        "type",
        "id",
        "sender",
        "content",
        "ts",
    }
    # The quote is a view, not the message's state.
    assert reply == Message(9, "b@example.com", "yes", 2.0, reply_to=3)


def test_protocol_2_names_the_quoted_sender_as_a_person():
    alice = Person("p1", "alice@example.com", "Alice")
    reply = Message(9, "b@example.com", "yes", 2.0, reply_to=3, quote=Quote(alice.key(), "lunch?"))
    quoted = V2.message(reply)["reply"]
    assert quoted["sender"]["id"] == "p1" and quoted["sender"]["name"] == "Alice"
    assert "alice@example.com" not in str(quoted)


def test_a_quote_travels_between_processes_as_it_was():
    for quote in (Quote("a@example.com", 'l\'été "x" 😀'), Quote("a@example.com", "", True), None):
        assert parse_quote(quote_text(quote)) == quote


# -- the Backend contract --------------------------------------------------------


def test_a_reply_is_stored_read_and_delivered_with_its_quote(make_backend):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        delivered: list[Message] = []
        backend.start(lambda room, message, origin: delivered.append(message), lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            original, _ = await backend.append("lobby", "a@example.com", "lunch?", None, "tab")
            quote = Quote("a@example.com", "lunch?")
            reply, _ = await backend.append(
                "lobby", "b@example.com", "yes", "r1", "tab", reply_to=original.id, quote=quote
            )
            assert reply.reply_to == original.id
            # Delivered (in this process) with what it quotes.
            live = next(m for m in delivered if m.id == reply.id)
            assert (live.reply_to, live.quote) == (original.id, quote)
            # Read back: the id, and no quote (the hub reads the original then).
            page = await backend.page("lobby", None, None, 10)
            assert [(m.id, m.reply_to) for m in page] == [(original.id, 0), (reply.id, original.id)]
            got = await backend.get("lobby", reply.id)
            assert got is not None and got.reply_to == original.id and got.quote is None
            # Several at once, in one read: those kept, in any order.
            many = await backend.get_many("lobby", [reply.id, 999, original.id])
            assert sorted((m.id, m.content, m.reply_to) for m in many) == [
                (original.id, "lunch?", 0),
                (reply.id, "yes", original.id),
            ]
            assert await backend.get_many("lobby", []) == []
            assert await backend.get_many("elsewhere", [original.id]) == []
            # A change keeps it.
            edited, _ = await backend.change("lobby", reply.id, Change(EDIT, "yes, at noon"))
            assert edited is not None and edited.reply_to == original.id
            changes, _ = await backend.changes("lobby", 0, 10)
            assert [(m.id, m.reply_to) for m in changes] == [(reply.id, original.id)]
            # A retry of its ref is the same message.
            again, duplicate = await backend.append(
                "lobby", "b@example.com", "yes", "r1", "tab", reply_to=original.id, quote=quote
            )
            assert duplicate and again.id == reply.id
        finally:
            await backend.close()

    asyncio.run(scenario())


# -- over the wire, on every backend ---------------------------------------------


@pytest.mark.gen_test(timeout=60)
async def test_a_reply_reaches_everyone_with_its_quote_and_follows_the_original(connect):
    alice = await connect()
    bob = await connect()
    await alice.join("alice@example.com")
    await bob.join("bob@example.com")
    await alice.expect("presence")
    original = await alice.say("lunch at  noon?\nor later", ref="a-1")
    await bob.expect("message")

    await bob.send({"type": "message", "content": "noon works", "ref": "b-1", "reply_to": original["id"]})
    sent = await bob.expect("sent")
    assert sent["ref"] == "b-1"
    live = await alice.expect("message")
    assert (live["id"], live["reply_to"]) == (sent["id"], original["id"])
    assert live["reply"] == {"sender": "alice@example.com", "excerpt": "lunch at noon? or later"}

    # A later join reads the original as it is: edited, then deleted.
    carol = await connect()
    await carol.send({"type": "join", "email": "carol@example.com", "rev": 0})
    history = (await carol.expect("joined"))["history"]
    assert history[-1]["reply"]["excerpt"] == "lunch at noon? or later"
    await alice.send({"type": "edit", "id": original["id"], "content": "lunch at one?", "ref": "e"})
    await _answered(alice, "e", rev=1)
    await _next(bob, "changed", rev=1)
    await _next(carol, "changed", rev=1)
    dave = await connect()
    history = (await dave.join("dave@example.com"))["history"]
    assert history[-1]["reply"] == {"sender": "alice@example.com", "excerpt": "lunch at one?"}
    await alice.send({"type": "delete", "id": original["id"], "ref": "d"})
    await _answered(alice, "d", rev=2)
    await _next(bob, "changed", rev=2, deleted=True)
    erin = await connect()
    history = (await erin.join("erin@example.com"))["history"]
    assert history[-1]["reply_to"] == original["id"]
    assert history[-1]["reply"] == {"sender": "alice@example.com", "excerpt": "", "deleted": True}
    assert "lunch" not in str(history)

    # The reply itself edited: its live news keeps reply_to (no quote: not news).
    await bob.send({"type": "edit", "id": sent["id"], "content": "noon works!", "ref": "e2"})
    answer = await _answered(bob, "e2", rev=3)
    assert answer["reply_to"] == original["id"] and "reply" not in answer

    # Replying to a deleted message is allowed: it shows as deleted.
    await bob.send({"type": "message", "content": "gone?", "reply_to": original["id"]})
    await _next(bob, "sent")
    await _next(erin, "changed", rev=3)
    assert (await _next(erin, "message"))["reply"]["deleted"] is True


@pytest.mark.gen_test(timeout=60)
async def test_replies_refused(connect):
    alice = await connect()
    await alice.send({"type": "message", "content": "x", "reply_to": 1, "ref": "n"})
    assert (await alice.expect("error"))["code"] == "not_joined"
    await alice.join("alice@example.com")
    sent = await alice.say("hello")

    async def refused(frame, code):
        await alice.send({"type": "message", "content": "a reply", "ref": "x-1", **frame})
        error = await alice.expect("error")
        assert (error["code"], error["ref"]) == (code, "x-1"), error
        return error

    error = await refused({"reply_to": sent["id"] + 1}, "not_found")
    assert "no message" in error["reason"] and "reply" in error["reason"]
    await refused({"reply_to": 10**12}, "not_found")
    await refused({"reply_to": 0}, "bad_frame")
    await refused({"reply_to": -3}, "bad_frame")
    await refused({"reply_to": "1"}, "bad_frame")
    await refused({"reply_to": True}, "bad_frame")
    await refused({"reply_to": 1.5}, "bad_frame")
    await refused({"reply_to": sent["id"], "content": "  "}, "empty")
    # Nothing was stored: the next message is the next id.
    assert (await alice.say("after"))["id"] == sent["id"] + 1
    # Another room's ids are not this room's.
    bob = await connect()
    await bob.send({"type": "join", "email": "bob@example.com", "room": "elsewhere"})
    await bob.expect("joined")
    await bob.send({"type": "message", "content": "hm", "reply_to": sent["id"], "ref": "o"})
    assert (await bob.expect("error"))["code"] == "not_found"
    await alice.nothing()


@pytest.mark.gen_test(timeout=60)
async def test_an_offline_page_catches_up_on_replies_to_older_messages(connect):
    alice = await connect()
    await alice.join("alice@example.com")
    old = [await alice.say(f"old {i}") for i in range(3)]
    carol = await connect()
    await carol.send({"type": "join", "email": "carol@example.com", "rev": 0})
    joined = await carol.expect("joined")
    last_id = joined["history"][-1]["id"]
    await carol.close()
    assert [(await alice.expect("presence"))["event"] for _ in range(2)] == ["join", "leave"]

    # Meanwhile: a reply to a message older than what Carol will ask for,
    # and the original then edited.
    await alice.send({"type": "message", "content": "about that", "reply_to": old[0]["id"]})
    reply = await alice.expect("sent")
    await alice.send({"type": "edit", "id": old[0]["id"], "content": "old 0, edited", "ref": "e"})
    await _answered(alice, "e", rev=1)

    back = await connect()
    await back.send({"type": "join", "email": "carol@example.com", "since": last_id, "rev": 0})
    joined = await back.expect("joined")
    assert [m["id"] for m in joined["history"]] == [reply["id"]]
    assert joined["history"][0]["reply"] == {"sender": "alice@example.com", "excerpt": "old 0, edited"}
    assert [c["id"] for c in joined["changes"]] == [old[0]["id"]]

    # Scrollback and the changes frame quote too.
    await back.send({"type": "history", "before": reply["id"] + 1, "limit": 1})
    page = await back.expect("history")
    assert page["messages"][0]["reply"]["excerpt"] == "old 0, edited"
    await back.send({"type": "edit", "id": reply["id"], "content": "about that!", "ref": "x"})
    assert (await back.expect("error"))["code"] == "not_yours"
    await alice.send({"type": "edit", "id": reply["id"], "content": "about that!", "ref": "e2"})
    await _answered(alice, "e2", rev=2)
    await _next(back, "changed", rev=2)
    await back.send({"type": "changes", "after": 1})
    changes = await back.expect("changes")
    assert changes["messages"][0]["reply"] == {"sender": "alice@example.com", "excerpt": "old 0, edited"}


# -- across two processes ----------------------------------------------------------


def test_replies_across_processes_and_after_a_catch_up(shared, servers):  # noqa: F811
    one, two = servers(shared)

    async def next_of(client, kind):
        frame = await client.recv()
        while frame["type"] == "presence":
            frame = await client.recv()
        assert frame["type"] == kind, frame
        return frame

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await XhrPollingClient(two.url).connect()
        await alice.join("alice@example.com")
        await bob.join("bob@example.com")
        await alice.expect("presence")
        original = await alice.say("which room?")
        await bob.expect("message")
        carol = await WebSocketClient(one.url).connect()
        seen = await carol.join("carol@example.com")
        await carol.close()

        # Bob replies on process two: Alice, on one, sees the quote.
        await bob.send({"type": "message", "content": "the big one", "reply_to": original["id"], "ref": "b"})
        sent = await next_of(bob, "sent")
        live = await next_of(alice, "message")
        assert (live["id"], live["reply_to"]) == (sent["id"], original["id"])
        assert live["reply"] == {"sender": "alice@example.com", "excerpt": "which room?"}
        # A reply to a message of process two's making, from process one.
        await alice.send({"type": "message", "content": "ok", "reply_to": sent["id"]})
        await next_of(alice, "sent")
        assert (await next_of(bob, "message"))["reply"]["excerpt"] == "the big one"

        # Carol catches up on process two.
        back = await WebSocketClient(two.url).connect()
        await back.send({"type": "join", "email": "carol@example.com", "since": seen["history"][-1]["id"]})
        joined = await back.expect("joined")
        assert [(m["reply_to"], m["reply"]["excerpt"]) for m in joined["history"]] == [
            (original["id"], "which room?"),
            (sent["id"], "the big one"),
        ]
        for client in (alice, bob, back):
            await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


# -- databases of an earlier schema -------------------------------------------------


def test_a_sqlite_database_of_schema_11_keeps_its_messages_and_takes_replies(tmp_path):
    path = str(tmp_path / "chatzilla.db")
    con = sqlite_backend.connect(path)
    sqlite_backend.migrate(con, upto=11)
    con.execute("INSERT INTO rooms (room, last_id, no) VALUES ('lobby', 1, 1)")
    con.execute(
        "INSERT INTO messages (room, id, sender, content, ts)"
        " VALUES ('lobby', 1, 'a@example.com', 'old', 1.0)"
    )
    con.close()

    async def scenario():
        backend = sqlite_backend.SQLiteBackend(path)
        backend.start(lambda *_: None, lambda *_: None)
        try:
            reply, _ = await backend.append("lobby", "b@example.com", "new", None, None, reply_to=1)
            return await backend.page("lobby", None, None, 10), reply
        finally:
            await backend.close()

    page, reply = asyncio.run(scenario())
    assert reply.reply_to == 1
    assert [(m.id, m.content, m.reply_to) for m in page] == [(1, "old", 0), (2, "new", 1)]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == sqlite_backend.SCHEMA_VERSION


def test_a_postgres_database_of_migration_9_keeps_its_messages_and_takes_replies(empty_database_url):
    async def scenario():
        con = await postgres_backend.connect(empty_database_url)
        try:
            await postgres_backend.migrate(con, upto=9)
            # Stored by the previous Chatzilla's function.
            await con.fetch(
                "SELECT * FROM chatzilla_append($1, $2, $3, $4, $5, $6, $7)",
                ["lobby"], ["a@example.com"], ["old"], [None], ["t"], 1.0, 600.0,
            )  # fmt: skip
        finally:
            await con.close()
        backend = postgres_backend.PostgresBackend(empty_database_url)
        await backend.open()
        backend.start(lambda *_: None, lambda *_: None)
        try:
            reply, _ = await backend.append("lobby", "b@example.com", "new", None, None, reply_to=1)
            page = await backend.page("lobby", None, None, 10)
        finally:
            await backend.close()
        # A process of the previous Chatzilla, still running, still appends.
        con = await asyncpg.connect(postgres_backend.normalize_url(empty_database_url))
        try:
            await con.fetch(
                "SELECT * FROM chatzilla_append($1, $2, $3, $4, $5, $6, $7)",
                ["lobby"], ["c@example.com"], ["older code"], [None], ["t"], 2.0, 600.0,
            )  # fmt: skip
            last = await con.fetchrow(
                "SELECT id, reply_to FROM messages WHERE room = 'lobby' ORDER BY id DESC LIMIT 1"
            )
        finally:
            await con.close()
        return page, reply, last

    page, reply, last = asyncio.run(scenario())
    assert [(m.id, m.content, m.reply_to) for m in page] == [(1, "old", 0), (2, "new", 1)]
    assert reply.reply_to == 1 and tuple(last) == (3, 0)
