"""Editing and deleting one's own messages (docs/protocol.md, "Edits and
deletes"), on every backend: the Backend contract of ``get``, ``change`` and
``changes``, then the frames over a real server, a catch-up after being
offline included. Across processes: tests/test_redis.py."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest

from chatzilla.backends.base import CHANGE
from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.chat import DELETE, EDIT, REACT, UNREACT, Change, Message, changed
from chatzilla.frames import V1, V2
from chatzilla.hub import Hub
from chatzilla.identity import Person
from chatzilla.limits import RateLimiter
from chatzilla.protocol import ProtocolError, check_emoji

from .conftest import make_settings
from .helpers import redis_or_skip
from .test_backend_contract import (
    REDIS_URL,
    make_backend,  # noqa: F401  (the fixture)
)
from .test_hub import Recorder

# -- the domain rule -----------------------------------------------------------


def test_an_edit_keeps_id_sender_and_time_and_says_when():
    message = Message(7, "a@example.com", "hello", 100.0, "r1")
    after = changed(message, Change(EDIT, "hello!"), 3, 150.0)
    assert after == Message(7, "a@example.com", "hello!", 100.0, "r1", rev=3, edited=150.0)
    assert after.frame() == {
        "type": "message",
        "id": 7,
        "sender": "a@example.com",
        "content": "hello!",
        "ts": 100.0,
        "rev": 3,
        "edited": 150.0,
    }


def test_a_delete_empties_the_message_and_a_second_changes_nothing():
    message = Message(7, "a@example.com", "hello", 100.0)
    deleted = changed(message, Change(DELETE), 4, 150.0)
    assert deleted is not None and (deleted.content, deleted.deleted, deleted.rev) == ("", True, 4)
    assert deleted.frame("changed")["deleted"] is True
    assert changed(deleted, Change(DELETE), 5, 160.0) is None
    with pytest.raises(ValueError):
        changed(deleted, Change(EDIT, "back"), 5, 160.0)


def test_an_edit_to_the_same_text_changes_nothing():
    assert changed(Message(7, "a@example.com", "hello", 100.0), Change(EDIT, "hello"), 1, 150.0) is None


def test_reactions_are_added_once_taken_back_and_gone_with_a_delete():
    message = Message(7, "a@example.com", "hello", 100.0)
    one = changed(message, Change(REACT, emoji="👍", who="b@example.com"), 1, 150.0)
    assert one is not None
    two = changed(one, Change(REACT, emoji="👍", who="c@example.com"), 2, 151.0)
    three = changed(two, Change(REACT, emoji="🎉", who="b@example.com"), 3, 152.0)
    assert three is not None and three.edited is None
    assert three.frame()["reactions"] == [
        {"emoji": "👍", "count": 2, "people": ["b@example.com", "c@example.com"]},
        {"emoji": "🎉", "count": 1, "people": ["b@example.com"]},
    ]
    assert changed(three, Change(REACT, emoji="👍", who="b@example.com"), 4, 153.0) is None
    assert changed(three, Change(UNREACT, emoji="😀", who="b@example.com"), 4, 153.0) is None
    back = changed(three, Change(UNREACT, emoji="🎉", who="b@example.com"), 4, 153.0)
    assert back is not None and back.reactions == (("👍", ("b@example.com", "c@example.com")),)
    gone = changed(three, Change(DELETE), 5, 154.0)
    assert gone is not None and gone.reactions == () and "reactions" not in gone.frame()


@pytest.mark.parametrize("emoji", ["👍", "❤️", "🇫🇷", "👩‍👩‍👧", "1️⃣", "👍🏽", "✅", " 🎉 "])
def test_an_emoji_is_accepted(emoji):
    assert check_emoji(emoji) == emoji.strip()


@pytest.mark.parametrize("emoji", ["", " ", "a", "ok", "1", "👍 x", "\u200b", "<b>", "👍" * 17, "\x00"])
def test_anything_else_is_no_emoji(emoji):
    with pytest.raises(ProtocolError) as refused:
        check_emoji(emoji)
    assert refused.value.code == "invalid_emoji"


def test_an_unchanged_message_is_version_1s_frame():
    assert set(Message(1, "a@example.com", "hi", 1.0).frame()) == {"type", "id", "sender", "content", "ts"}


def test_own_is_the_address_in_protocol_1_and_the_person_in_protocol_2():
    alice = Person("p1", "alice@example.com", "Alice")
    renamed = Person("p1", "alice@example.com", "Alicia")
    assert V1.owner("alice@example.com") == "alice@example.com"
    assert V2.owner(alice.key()) == V2.owner(renamed.key()) == "p1"
    assert V2.owner("alice@example.com") == ""  # an unverified sender owns nothing


# -- the Backend contract --------------------------------------------------------


def test_changes_are_stored_listed_and_delivered(make_backend):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        changes = []

        def deliver(room, message, origin):
            if origin is CHANGE:
                changes.append(message)

        backend.start(deliver, lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            first, _ = await backend.append("lobby", "a@example.com", "one", "r1", "tab")
            second, _ = await backend.append("lobby", "b@example.com", "two", None, "tab")
            assert await backend.changes("lobby", 0, 10) == ([], 0)
            edited, done = await backend.change("lobby", first.id, Change(EDIT, "one, edited"))
            assert done and (edited.rev, edited.content, edited.sender, edited.ts) == (
                1,
                "one, edited",
                "a@example.com",
                first.ts,
            )
            assert edited.edited is not None and edited.edited >= first.ts
            again, done_again = await backend.change("lobby", first.id, Change(EDIT, "one, edited"))
            assert (again, done_again) == (edited, False)  # a retry changes nothing
            deleted, done = await backend.change("lobby", second.id, Change(DELETE))
            assert done and (deleted.rev, deleted.content, deleted.deleted) == (2, "", True)
            assert (await backend.change("lobby", second.id, Change(DELETE)))[1] is False
            refused, done = await backend.change("lobby", second.id, Change(EDIT, "back"))
            assert refused == deleted and not done
            missing = await backend.change("lobby", 999, Change(EDIT, "x"))
            assert missing == (None, False)
            edited_twice, _ = await backend.change("lobby", first.id, Change(EDIT, "one, again"))
            assert edited_twice.rev == 3
            # Delivered in this process before returning, or soon (shared backends).
            for _ in range(200):
                if len(changes) >= 3:
                    break
                await asyncio.sleep(0.025)
            return (
                [(m.id, m.rev, m.content, m.deleted) for m in changes],
                await backend.get("lobby", first.id),
                await backend.get("lobby", 999),
                await backend.page("lobby", None, None, 10),
                await backend.changes("lobby", 0, 10),
                await backend.changes("lobby", 2, 10),
                await backend.changes("lobby", 0, 1),
                await backend.changes("elsewhere", 0, 10),
                first,
                second,
            )
        finally:
            await backend.close()

    delivered, got, missing, page, everything, after_2, first_only, elsewhere, first, second = asyncio.run(
        scenario()
    )
    # In change order, each as it was then or later: Postgres's reader reads
    # a message as it is when notified, so a message changed twice in a
    # row may come once, as it is after the second.
    assert [rev for _, rev, _, _ in delivered] == sorted({rev for _, rev, _, _ in delivered})
    assert delivered[-2:] == [(second.id, 2, "", True), (first.id, 3, "one, again", False)]
    assert delivered[0] in ((first.id, 1, "one, edited", False), (second.id, 2, "", True))
    assert got is not None and (got.content, got.rev, got.ref) == ("one, again", 3, "r1")
    assert missing is None
    assert [(m.id, m.content, m.rev, m.deleted) for m in page] == [
        (first.id, "one, again", 3, False),
        (second.id, "", 2, True),
    ]
    # A message changed twice is listed once, at its latest change.
    assert [(m.id, m.rev) for m in everything[0]] == [(second.id, 2), (first.id, 3)] and everything[1] == 3
    assert [(m.id, m.rev) for m in after_2[0]] == [(first.id, 3)]
    assert [m.id for m in first_only[0]] == [second.id] and first_only[1] == 3
    assert elsewhere == ([], 0)


def test_reactions_are_stored_and_delivered(make_backend):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        changes = []
        backend.start(
            lambda room, m, origin: changes.append(m) if origin is CHANGE else None, lambda *_: None
        )
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            message, _ = await backend.append("lobby", "a@example.com", "react to me", None, "tab")
            for who in ("b@example.com", "c@example.com"):
                await backend.change("lobby", message.id, Change(REACT, emoji="👍", who=who))
            await backend.change("lobby", message.id, Change(REACT, emoji="🇫🇷", who="b@example.com"))
            again = await backend.change("lobby", message.id, Change(REACT, emoji="👍", who="b@example.com"))
            await backend.change("lobby", message.id, Change(UNREACT, emoji="👍", who="b@example.com"))
            for _ in range(200):
                if changes and changes[-1].rev == 4:
                    break
                await asyncio.sleep(0.025)
            page = await backend.page("lobby", None, None, 1)
            listed = await backend.changes("lobby", 0, 5)
            return again, changes, page[0], listed
        finally:
            await backend.close()

    again, changes, stored, (listed, rev) = asyncio.run(scenario())
    assert again[1] is False
    # In change order; a shared backend's reader may deliver a message
    # changed twice in a row once, as it is after the second.
    revs = [m.rev for m in changes]
    assert revs == sorted(set(revs)) and revs[-1] == 4
    assert (
        changes[-1].reactions == stored.reactions == (("👍", ("c@example.com",)), ("🇫🇷", ("b@example.com",)))
    )
    assert [m.reactions for m in listed] == [stored.reactions] and rev == 4


def test_a_change_survives_a_restart_of_sqlite(tmp_path):
    path = str(tmp_path / "chatzilla.db")

    async def write():
        backend = SQLiteBackend(path)
        backend.start(lambda *_: None, lambda *_: None)
        message, _ = await backend.append("lobby", "a@example.com", "hello", None, None)
        await backend.change("lobby", message.id, Change(EDIT, "hello, edited"))
        await backend.close()

    async def read():
        backend = SQLiteBackend(path)
        backend.start(lambda *_: None, lambda *_: None)
        try:
            return await backend.page("lobby", None, None, 5), await backend.changes("lobby", 0, 5)
        finally:
            await backend.close()

    asyncio.run(write())
    page, (changes, rev) = asyncio.run(read())
    assert [(m.content, m.rev) for m in page] == [("hello, edited", 1)]
    assert [m.id for m in changes] == [1] and rev == 1


# -- over the wire, on every backend ---------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "postgres+redis"])
def settings(request, tmp_path):
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("database_url"), rate_limit=0.0)
    if request.param.endswith("redis"):
        client = redis_or_skip(REDIS_URL)
        prefix = f"chatzilla-test-{uuid.uuid4().hex[:12]}"
        request.addfinalizer(lambda: _drop_keys(client, prefix))
        # postgres+redis: history in Postgres, the news of changes through Redis.
        database_url = request.getfixturevalue("database_url") if request.param != "redis" else ""
        return make_settings(
            redis_url=REDIS_URL, redis_prefix=prefix, database_url=database_url, rate_limit=0.0
        )
    return make_settings(storage=request.param, db=str(tmp_path / "chatzilla.db"), rate_limit=0.0)


def _drop_keys(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


async def _changed(client, **expected) -> dict:
    """The next frame, a ``changed`` one with the ``expected`` fields."""
    frame = await client.expect("changed")
    for name, value in expected.items():
        assert frame.get(name) == value, (name, frame)
    return frame


async def _answered(client, ref: str, **expected) -> dict:
    """The two ``changed`` frames the changer's connection gets, in either
    order: the answer (with ``ref``) and the live news (without); returns
    the answer."""
    frames = [await _changed(client, **expected), await _changed(client, **expected)]
    assert sorted(f.get("ref", "") for f in frames) == ["", ref], frames
    return next(f for f in frames if "ref" in f)


@pytest.mark.gen_test(timeout=60)
async def test_edit_and_delete_reach_everyone_and_later_joins(connect):
    alice = await connect()
    bob = await connect()
    await alice.join("alice@example.com")
    await bob.join("bob@example.com")
    await alice.expect("presence")
    sent = await alice.say("hello wrold", ref="a-1")
    await bob.expect("message")

    await alice.send({"type": "edit", "id": sent["id"], "content": "  hello world ", "ref": "e-1"})
    answer = await _answered(alice, "e-1", id=sent["id"], content="hello world", rev=1)
    assert answer["sender"] == "alice@example.com" and answer["ts"] == sent["ts"]
    assert answer["edited"] >= sent["ts"]
    live = await _changed(bob, id=sent["id"], content="hello world", rev=1)
    assert "ref" not in live

    # A retry (the same text) is answered alike and changes nothing.
    await alice.send({"type": "edit", "id": sent["id"], "content": "hello world", "ref": "e-1"})
    await _changed(alice, ref="e-1", rev=1)
    await bob.nothing()

    await alice.send({"type": "delete", "id": sent["id"], "ref": "d-1"})
    await _answered(alice, "d-1", content="", deleted=True, rev=2)
    await _changed(bob, content="", deleted=True, rev=2)

    carol = await connect()
    await carol.send({"type": "join", "email": "carol@example.com", "rev": 0})
    joined = await carol.expect("joined")
    assert joined["rev"] == 2 and "changes" not in joined
    assert joined["history"][-1] == {
        "type": "message",
        "id": sent["id"],
        "sender": "alice@example.com",
        "content": "",
        "ts": sent["ts"],
        "rev": 2,
        "edited": answer["edited"],
        "deleted": True,
    }


@pytest.mark.gen_test(timeout=60)
async def test_reactions_reach_everyone(connect):
    alice = await connect()
    bob = await connect()
    await alice.join("alice@example.com")
    await bob.join("bob@example.com")
    await alice.expect("presence")
    sent = await alice.say("vote here")
    await bob.expect("message")
    await bob.send({"type": "react", "id": sent["id"], "emoji": "👍", "ref": "r-1"})
    answer = await _answered(bob, "r-1", rev=1)
    assert answer["reactions"] == [{"emoji": "👍", "count": 1, "people": ["bob@example.com"]}]
    assert "edited" not in answer
    live = await _changed(alice, rev=1)
    assert live["reactions"] == answer["reactions"] and live["content"] == "vote here"
    await alice.send({"type": "react", "id": sent["id"], "emoji": "👍", "ref": "r-2"})
    await _answered(alice, "r-2", rev=2)
    assert (await _changed(bob, rev=2))["reactions"][0]["people"] == ["bob@example.com", "alice@example.com"]
    await bob.send({"type": "unreact", "id": sent["id"], "emoji": "👍", "ref": "r-3"})
    await _answered(bob, "r-3", rev=3)
    assert (await _changed(alice, rev=3))["reactions"][0]["people"] == ["alice@example.com"]
    for frame, code in (
        ({"type": "react", "id": sent["id"], "emoji": "no"}, "invalid_emoji"),
        ({"type": "react", "id": sent["id"]}, "bad_frame"),
        ({"type": "react", "id": 999, "emoji": "👍"}, "not_found"),
    ):
        await bob.send({**frame, "ref": "x"})
        assert (await bob.expect("error"))["code"] == code
    joined_page = await connect()
    await joined_page.send({"type": "join", "email": "carol@example.com"})
    history = (await joined_page.expect("joined"))["history"]
    assert history[-1]["reactions"] == [{"emoji": "👍", "count": 1, "people": ["alice@example.com"]}]


@pytest.mark.gen_test(timeout=60)
async def test_changes_refused(connect):
    alice = await connect()
    bob = await connect()
    await alice.send({"type": "edit", "id": 1, "content": "x", "ref": "n"})
    assert (await alice.expect("error"))["code"] == "not_joined"
    await alice.join("alice@example.com")
    await bob.join("bob@example.com")
    await alice.expect("presence")
    sent = await alice.say("mine")
    await bob.expect("message")

    async def refused(client, frame, code):
        await client.send({**frame, "ref": "x-1"})
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == (code, "x-1"), error
        return error

    await refused(bob, {"type": "edit", "id": sent["id"], "content": "his now"}, "not_yours")
    await refused(bob, {"type": "delete", "id": sent["id"]}, "not_yours")
    await refused(alice, {"type": "edit", "id": sent["id"] + 1, "content": "x"}, "not_found")
    await refused(alice, {"type": "delete", "id": 10**6}, "not_found")
    await refused(alice, {"type": "edit", "id": sent["id"], "content": "  "}, "empty")
    await refused(alice, {"type": "edit", "id": sent["id"], "content": "x" * 2001}, "too_long")
    await refused(alice, {"type": "edit", "id": sent["id"]}, "bad_frame")
    await refused(alice, {"type": "delete"}, "bad_frame")
    await refused(alice, {"type": "delete", "id": "1"}, "bad_frame")
    await refused(alice, {"type": "delete", "id": 0}, "bad_frame")
    await refused(alice, {"type": "changes", "after": -1}, "bad_frame")
    await alice.send({"type": "delete", "id": sent["id"]})
    await _changed(alice, deleted=True)
    await _changed(alice, deleted=True)
    await _changed(bob, deleted=True)
    error = await refused(alice, {"type": "edit", "id": sent["id"], "content": "back"}, "not_found")
    assert "deleted" in error["reason"]
    await bob.nothing()


@pytest.mark.gen_test(timeout=60)
async def test_a_page_that_was_offline_catches_up_on_changes_to_older_messages(connect):
    alice = await connect()
    await alice.join("alice@example.com")
    acks = [await alice.say(f"m{i}") for i in range(5)]
    carol = await connect()
    await carol.send({"type": "join", "email": "carol@example.com", "rev": 0})
    joined = await carol.expect("joined")
    last_id, rev = joined["history"][-1]["id"], joined.get("rev", 0)
    assert rev == 0
    await carol.close()
    assert [(await alice.expect("presence"))["event"] for _ in range(2)] == ["join", "leave"]

    # Meanwhile: an old message edited, another deleted, a new one sent.
    await alice.send({"type": "edit", "id": acks[1]["id"], "content": "m1 edited", "ref": "e"})
    await _answered(alice, "e", rev=1)
    await alice.send({"type": "delete", "id": acks[3]["id"], "ref": "d"})
    await _answered(alice, "d", rev=2)
    new = await alice.say("m5")

    back = await connect()
    await back.send({"type": "join", "email": "carol@example.com", "since": last_id, "rev": rev})
    joined = await back.expect("joined")
    assert [m["id"] for m in joined["history"]] == [new["id"]]
    assert joined["rev"] == 2
    assert [(c["type"], c["id"], c["content"], c.get("deleted", False)) for c in joined["changes"]] == [
        ("changed", acks[1]["id"], "m1 edited", False),
        ("changed", acks[3]["id"], "", True),
    ]
    assert "changes_more" not in joined

    # A version 1 catch-up (no rev) is exactly as before: no change fields.
    plain = await connect()
    await plain.send({"type": "join", "email": "dave@example.com", "since": last_id})
    joined = await plain.expect("joined")
    assert "rev" not in joined and "changes" not in joined

    # Asked for after a change id: the later ones, in order.
    await back.expect("presence")
    await back.send({"type": "changes", "after": 1})
    page = await back.expect("changes")
    assert (page["after"], page["more"], page["rev"]) == (1, False, 2)
    assert [c["id"] for c in page["messages"]] == [acks[3]["id"]]


# -- the hub: flood control, protocol 2, the moderator's delete ---------------------


def _hub(wire=V1, messages=None):
    backend = MemoryBackend()
    return Hub(backend, history_limit=50, max_content=2000, messages=messages, wire=wire)


def test_changes_are_flood_controlled_as_messages():
    async def scenario():
        clock = [0.0]
        hub = _hub(messages=RateLimiter(5, 10, lambda: clock[0]))
        alice = Recorder("alice")
        hub.open(alice)
        await hub.join(alice, "alice@example.com")
        await hub.say(alice, "one", None)
        codes = []
        for i in range(12):
            try:
                await hub.edit(alice, 1, f"edit {i}", f"e{i}")
                codes.append("ok")
            except ProtocolError as error:
                codes.append(error.code)
        clock[0] += 1.0
        await hub.delete(alice, 1, "d")
        return codes

    codes = asyncio.run(scenario())
    # The message took one of the burst of 10; the edits the other 9.
    assert codes == ["ok"] * 9 + ["rate_limited"] * 3


def test_own_in_protocol_2_is_the_person_whatever_their_name():
    alice, alicia = Person("p1", "alice@example.com", "Alice"), Person("p1", "alice@example.com", "Alicia")
    mallory = Person("p2", "mallory@example.com", "Alice")

    async def scenario():
        hub = _hub(wire=V2)
        tab, later, other = Recorder("alice"), Recorder("alicia"), Recorder("mallory")
        for client in (tab, later, other):
            hub.open(client)
        await hub.join(tab, None, verified=alice.key())
        await hub.say(tab, "hello", None)
        await hub.join(later, None, verified=alicia.key())
        await hub.join(other, None, verified=mallory.key())
        with pytest.raises(ProtocolError) as refused:
            await hub.edit(other, 1, "mine now", "m")
        await hub.edit(later, 1, "hello, renamed", "a")
        return refused.value.code, [f for f in later.take() if f["type"] == "changed"]

    code, frames = asyncio.run(scenario())
    assert code == "not_yours"
    assert frames[-1]["sender"] == {"id": "p1", "name": "Alice", "avatar": frames[-1]["sender"]["avatar"]}
    assert {f["content"] for f in frames} == {"hello, renamed"}


def test_reactions_over_the_hub_name_people_and_are_bounded():
    alice, alicia = Person("p1", "alice@example.com", "Alice"), Person("p1", "alice@example.com", "Alicia")

    async def scenario():
        hub = _hub(wire=V2)
        tab, later = Recorder("alice"), Recorder("alicia")
        for client in (tab, later):
            hub.open(client)
        await hub.join(tab, None, verified=alice.key())
        await hub.say(tab, "hello", None)
        await hub.react(tab, 1, "👍", False, "r1")
        # Renamed since: the same person takes the reaction back.
        await hub.join(later, None, verified=alicia.key())
        await hub.react(later, 1, "👍", True, "r2")
        refused = []
        for n, emoji in enumerate("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩"):
            try:
                await hub.react(tab, 1, emoji, False, f"e{n}")
            except ProtocolError as error:
                refused.append(error.code)
        for bad in ("x", "👍 and more"):
            try:
                await hub.react(tab, 1, bad, False, "bad")
            except ProtocolError as error:
                refused.append(error.code)
        return (
            [f for f in tab.take() if f["type"] == "changed" and f.get("ref") == "r1"],
            later.take(),
            refused,
        )

    answers, later, refused = asyncio.run(scenario())
    assert answers[0]["reactions"][0]["emoji"] == "👍"
    assert answers[0]["reactions"][0]["people"][0]["id"] == "p1"
    assert "@" not in json.dumps(answers)  # no address in protocol 2
    taken_back = next(f for f in later if f.get("ref") == "r2")
    assert "reactions" not in taken_back
    assert refused == ["too_many_reactions", "invalid_emoji", "invalid_emoji"]


def test_a_moderator_deletes_anyones_message_through_the_hub(caplog):
    async def scenario():
        hub = _hub()
        alice, bob = Recorder("alice"), Recorder("bob")
        for client in (alice, bob):
            hub.open(client)
            await hub.join(client, f"{client.name}@example.com")
        await hub.say(alice, "spam", None)
        bob.take()
        after = await hub.delete_message("lobby", 1, actor="mod@example.com", reason="spam")
        with pytest.raises(ProtocolError) as missing:
            await hub.delete_message("lobby", 99, actor="mod@example.com", reason="spam")
        return after, bob.take(), missing.value.code

    with caplog.at_level(logging.INFO, logger="chatzilla.hub"):
        after, frames, code = asyncio.run(scenario())
    assert after.deleted and after.content == ""
    assert [(f["type"], f["deleted"]) for f in frames] == [("changed", True)]
    assert code == "not_found"
    assert any("deleted by" in r.getMessage() and "spam" in r.getMessage() for r in caplog.records)
