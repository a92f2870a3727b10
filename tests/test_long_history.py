"""A room can always be joined and caught up on, whatever its history holds.

What a ``joined`` (or a ``history`` page) carries is bounded in bytes as they
go on the wire, where JSON escapes an emoji as 12 bytes, as well as in
count; ``"more": true`` says older messages were left out, and scrollback
brings them. A frame the client asked for never counts against the
slow-consumer cap (``max_queued``) in a way that closes its connection.

Checked over every SockJS transport (and the raw WebSocket) with the two
rooms that used to lock clients out: 50 messages of 2000 emoji, and a
catch-up on 600 messages of 2000 characters.
"""

from __future__ import annotations

import pytest

from chatzilla import protocol

from .conftest import make_settings

KINDS = ["websocket", "xhr-streaming", "xhr-polling", "eventsource", "jsonp-polling", "raw-websocket"]
EMOJI = "\U0001f600"
ROOM = "lobby"


async def seed(app, count: int, content: str) -> list[int]:
    """``count`` messages stored through the app's own backend; their ids."""
    ids = []
    for n in range(count):
        message, _ = await app.backend.append(ROOM, "writer@example.com", f"{content} {n}", None, None)
        ids.append(message.id)
    return ids


async def scroll_back(client, ids: list[int], more: bool, since: int = 0) -> list[int]:
    """Page back from the oldest of ``ids`` while the server says there is
    more (and, catching up, until ``since``); every id received, oldest first."""
    while more and ids[0] > since + 1:
        await client.send({"type": "history", "before": ids[0], "limit": protocol.MAX_PAGE})
        page = await client.expect("history")
        assert page["messages"], page
        ids = [m["id"] for m in page["messages"]] + ids
        more = page["more"]
    return [i for i in ids if i > since]


def wire_bytes(frame: dict) -> int:
    return protocol.wire_size(protocol.encode(frame))


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "settings",
    [make_settings(rate_limit=0), make_settings(rate_limit=0, max_queued=65536)],
    ids=["default-cap", "64KiB-cap"],
)
async def test_the_emoji_room_can_be_joined_and_read_back(app, connect, kind, settings):
    ids = await seed(app, 50, EMOJI * 1990)
    reader = await connect(kind)
    joined = await reader.join("reader@example.com")
    history = joined["history"]
    # Bounded in bytes, the newest first; more: scrollback has the rest.
    assert 0 < len(history) < 50 and joined["more"] is True
    assert sum(wire_bytes(m) for m in history) <= settings.history_bytes
    assert [m["id"] for m in history] == ids[-len(history) :]
    assert await scroll_back(reader, [m["id"] for m in history], True) == ids
    # Still open, still in the room.
    ack = await reader.say("read it all", "r-1")
    assert ack["id"] == ids[-1] + 1


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("settings", [make_settings(rate_limit=0)])
async def test_a_long_catch_up_comes_whole(app, connect, kind, settings):
    before = await seed(app, 10, "earlier")
    missed = await seed(app, 600, "x" * 1990)
    reader = await connect(kind)
    await reader.send({"type": "join", "email": "reader@example.com", "since": before[-1]})
    joined = await reader.expect("joined")
    history = [m["id"] for m in joined["history"]]
    assert 0 < len(history) < 600 and joined["more"] is True and "truncated" not in joined
    assert history == missed[-len(history) :]
    assert await scroll_back(reader, history, True, since=before[-1]) == missed
    # Live messages follow the catch-up with no gap.
    writer = await connect("websocket")
    await writer.join("writer@example.com")
    await reader.expect("presence")
    ack = await writer.say("after the catch-up", "w-1")
    assert (await reader.expect("message"))["id"] == ack["id"] == missed[-1] + 1


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [make_settings(history_bytes=1000)])
async def test_one_message_over_the_budget_still_comes(app, connect):
    ids = await seed(app, 3, "y" * 1500)
    reader = await connect()
    joined = await reader.join("reader@example.com")
    assert [m["id"] for m in joined["history"]] == ids[-1:] and joined["more"] is True
    await reader.send({"type": "history", "before": ids[-1]})
    page = await reader.expect("history")
    assert [m["id"] for m in page["messages"]] == ids[1:2] and page["more"] is True


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [make_settings(max_queued=65536)])
async def test_a_client_that_reads_nothing_is_still_closed(app, connect, health):
    """The allowance for asked-for history is bounded: live traffic a client
    does not read still closes it, a little past max_queued."""
    await seed(app, 50, EMOJI * 1990)
    reader = await connect("xhr-polling")
    await reader.join("reader@example.com")
    await health(connections=1)
    reader.abandon()  # polls no more: nothing else is read
    for n in range(60):
        await app.backend.append(ROOM, "writer@example.com", f"{EMOJI * 1990} {n}", None, None)
    await health(connections=0)
