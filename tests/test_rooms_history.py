"""Rooms, catching up with ``since``, scrollback and idempotent retries, over the wire."""

from __future__ import annotations

import dataclasses

import pytest

from chatzilla.hub import MAX_CATCH_UP

from .conftest import make_settings


@pytest.fixture
def transport() -> str:
    # These rules live above the transport; one transport is enough here.
    return "websocket"


@pytest.fixture
def settings(stores):
    # Every rule here holds in memory and on Postgres alike.
    # Rooms are filled with hundreds of messages at once: no flood control.
    return dataclasses.replace(stores, rate_limit=0)


async def _fill(client, n: int, prefix: str = "m") -> list[int]:
    """Send ``n`` messages without waiting in between; return their ids."""
    for i in range(n):
        await client.send({"type": "message", "content": f"{prefix}{i}", "ref": f"{prefix}{i}"})
    return [(await client.expect("sent"))["id"] for _ in range(n)]


@pytest.mark.gen_test
async def test_join_names_the_room(clients):
    lobby = await clients()
    # A version 1 join gets a version 1 `joined`, with no room field.
    assert "room" not in await lobby.join("a@example.com")
    named = await clients()
    await named.send({"type": "join", "email": "b@example.com", "room": "lobby"})
    joined = await named.expect("joined")
    assert joined["room"] == "lobby" and joined["participants"] == ["a@example.com", "b@example.com"]
    dev = await clients()
    await dev.send({"type": "join", "email": "a@example.com", "room": "dev-team_2"})
    assert (await dev.expect("joined"))["room"] == "dev-team_2"


@pytest.mark.gen_test
@pytest.mark.parametrize("room", ["", "Dev", "a b", "x" * 65, "caf\u00e9", "a/b", "lobby!"])
async def test_bad_room_names(clients, room):
    client = await clients()
    await client.send({"type": "join", "email": "a@example.com", "room": room, "ref": "j"})
    error = await client.expect("error")
    assert (error["code"], error["ref"]) == ("invalid_room", "j")
    # Still usable afterwards.
    await client.send({"type": "join", "email": "a@example.com", "room": "x" * 64})
    assert (await client.expect("joined"))["room"] == "x" * 64


@pytest.mark.gen_test
async def test_room_of_wrong_type_is_a_bad_frame(clients):
    client = await clients()
    await client.send({"type": "join", "email": "a@example.com", "room": 5})
    assert (await client.expect("error"))["code"] == "bad_frame"


@pytest.mark.gen_test
async def test_rooms_do_not_leak(clients):
    alice, bob, carol = await clients(), await clients(), await clients()
    await alice.join("alice@example.com")
    for _ in range(3):
        await alice.say("lobby talk")
    await bob.send({"type": "join", "email": "bob@example.com", "room": "dev"})
    joined = await bob.expect("joined")
    assert joined["participants"] == ["bob@example.com"] and joined["history"] == []
    await carol.send({"type": "join", "email": "carol@example.com", "room": "dev"})
    assert (await carol.expect("joined"))["participants"] == ["bob@example.com", "carol@example.com"]
    assert (await bob.expect("presence"))["count"] == 2
    sent = await bob.say("dev talk")
    assert sent["id"] == 1  # ids are per room
    assert (await carol.expect("message"))["content"] == "dev talk"
    await carol.close()
    assert (await bob.expect("presence"))["event"] == "leave"
    await alice.nothing()


@pytest.mark.gen_test
async def test_one_email_in_two_rooms(clients):
    lobby, dev, watcher = await clients(), await clients(), await clients()
    await watcher.send({"type": "join", "email": "w@example.com", "room": "dev"})
    await watcher.expect("joined")
    await lobby.join("alice@example.com")
    await dev.send({"type": "join", "email": "alice@example.com", "room": "dev"})
    await dev.expect("joined")
    presence = await watcher.expect("presence")
    assert (presence["email"], presence["count"]) == ("alice@example.com", 2)


@pytest.mark.gen_test
async def test_since_returns_exactly_the_missed_messages(clients):
    writer = await clients()
    await writer.join("writer@example.com")
    ids = await _fill(writer, 20)
    reader = await clients()
    await reader.send({"type": "join", "email": "reader@example.com", "since": ids[11]})
    history = (await reader.expect("joined"))["history"]
    assert [m["id"] for m in history] == ids[12:]
    late = await clients()
    await late.send({"type": "join", "email": "late@example.com", "since": ids[-1]})
    joined = await late.expect("joined")
    assert joined["history"] == [] and "truncated" not in joined and "more" not in joined


@pytest.mark.gen_test
@pytest.mark.parametrize("since", [-1, 1.5, "3", True])
async def test_bad_since_is_a_bad_frame(clients, since):
    client = await clients()
    await client.send({"type": "join", "email": "a@example.com", "since": since})
    assert (await client.expect("error"))["code"] == "bad_frame"


# SQLite: the memory backend keeps only the newest 1000 messages of a room.
@pytest.mark.parametrize("settings", [make_settings(rate_limit=0, storage="sqlite")], ids=["sqlite"])
@pytest.mark.gen_test(timeout=60)
async def test_since_is_capped_and_says_more(clients):
    writer = await clients()
    await writer.join("writer@example.com")
    ids = await _fill(writer, MAX_CATCH_UP + 5)
    reader = await clients()
    await reader.send({"type": "join", "email": "reader@example.com", "since": 0})
    joined = await reader.expect("joined")
    assert joined["more"] is True and "truncated" not in joined
    assert [m["id"] for m in joined["history"]] == ids[-MAX_CATCH_UP:]


@pytest.mark.gen_test(timeout=30)
async def test_scrollback_pages_without_gap_or_repeat(clients):
    writer = await clients()
    await writer.join("writer@example.com")
    ids = await _fill(writer, 250)
    reader = await clients()
    joined = await reader.join("reader@example.com")
    seen = [m["id"] for m in joined["history"]]
    assert seen == ids[-50:]
    more = True
    while more:
        await reader.send({"type": "history", "before": seen[0], "limit": 70})
        page = await reader.expect("history")
        assert page["before"] == seen[0]
        assert len(page["messages"]) <= 70
        seen = [m["id"] for m in page["messages"]] + seen
        more = page["more"]
    assert seen == ids


@pytest.mark.gen_test(timeout=30)
async def test_scrollback_limit_is_capped_at_100(clients):
    writer = await clients()
    await writer.join("writer@example.com")
    ids = await _fill(writer, 120)
    await writer.send({"type": "history", "limit": 1000})
    page = await writer.expect("history")
    assert [m["id"] for m in page["messages"]] == ids[-100:] and page["more"] is True
    assert "before" not in page


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "frame",
    [
        {"type": "history", "limit": 0},
        {"type": "history", "before": "10"},
        {"type": "history", "before": 0},
        {"type": "history", "limit": 2.5},
    ],
)
async def test_bad_scrollback_requests(clients, frame):
    client = await clients()
    await client.join("a@example.com")
    await client.send(frame)
    assert (await client.expect("error"))["code"] == "bad_frame"


@pytest.mark.gen_test
async def test_scrollback_needs_a_join(clients):
    client = await clients()
    await client.send({"type": "history", "before": 5})
    assert (await client.expect("error"))["code"] == "not_joined"


@pytest.mark.gen_test
async def test_retried_ref_is_acknowledged_with_the_first_id_and_sent_once(clients):
    sender, other_tab, receiver = await clients(), await clients(), await clients()
    await sender.join("alice@example.com")
    await other_tab.join("alice@example.com")
    await receiver.join("bob@example.com")
    await sender.expect("presence")
    await other_tab.expect("presence")
    first = await sender.say("only once", ref="retry-1")
    again = await sender.say("only once", ref="retry-1")
    assert (await other_tab.expect("message"))["id"] == first["id"]
    # The same person retrying from another tab is recognised too.
    from_tab = await other_tab.say("only once", ref="retry-1")
    assert again["id"] == from_tab["id"] == first["id"] and again["ts"] == first["ts"]
    assert (await receiver.expect("message"))["id"] == first["id"]
    await receiver.nothing()
    # Somebody else's identical ref is a different message.
    assert (await receiver.say("mine", ref="retry-1"))["id"] == first["id"] + 1
