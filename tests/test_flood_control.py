"""Flood control and limits over real connections: frames and messages a
second, joins per address, frame and packet sizes, connections per address,
rooms, and frames piling up faster than the server handles them.

The default limit is 5 frames a second per connection and 5 messages a
second per e-mail, in bursts of 10 (a join is a frame too).
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from .conftest import make_settings
from .helpers import assert_error, joined_pair, say_and_check, still_works

ALICE, BOB = "alice@example.com", "bob@example.com"


async def blast(client, n: int, prefix: str = "m") -> list[dict]:
    """Send ``n`` messages in one SockJS packet, which the server takes in one
    go (no token comes back in between, however slow the machine); return the
    ``n`` replies (the messages of others that arrive meanwhile are left out)."""
    frames = [
        json.dumps({"type": "message", "content": f"{prefix}{i}", "ref": f"{prefix}{i}"}) for i in range(n)
    ]
    await client.send_packet(json.dumps(frames))
    replies = []
    while len(replies) < n:
        frame = await client.recv()
        if frame["type"] != "message":
            replies.append(frame)
    return replies


def split(replies: list[dict]) -> tuple[list[dict], list[dict]]:
    sent = [r for r in replies if r["type"] == "sent"]
    limited = [r for r in replies if r["type"] == "error"]
    assert len(sent) + len(limited) == len(replies), replies
    for error in limited:
        assert set(error) == {"type", "code", "reason", "ref", "retry_after"}, error
        assert error["code"] == "rate_limited"
        assert isinstance(error["retry_after"], float) and 0 < error["retry_after"] <= 0.2, error
    return sent, limited


@pytest.mark.gen_test
async def test_messages_past_the_burst_are_refused_and_go_nowhere(clients, health):
    a, b = await joined_pair(clients)
    sent, limited = split(await blast(a, 20))
    # The join took one token of a's 10; some may have come back since.
    assert 9 <= len(sent) <= 11 and len(limited) == 20 - len(sent)
    # b got exactly the accepted ones, and nothing else.
    for ack in sent:
        assert (await b.expect("message"))["id"] == ack["id"]
    await asyncio.sleep(limited[-1]["retry_after"])
    await say_and_check(a, [b], "after waiting as told", ref="later")


@pytest.mark.gen_test
async def test_the_limit_is_per_email_across_tabs(connect):
    """Each tab alone is within its own budget; together they are not."""
    tab1 = await connect()
    await tab1.join(ALICE)
    tab2 = await connect("xhr-streaming")
    await tab2.join(ALICE)
    replies = await asyncio.gather(blast(tab1, 8, "one"), blast(tab2, 8, "two"))
    sent, limited = split(replies[0] + replies[1])
    assert 10 <= len(sent) <= 12 and limited
    assert all("alice@example.com" in error["reason"] for error in limited)


@pytest.mark.gen_test
async def test_bad_frames_count_too(connect):
    a = await connect()
    replies = []
    for i in range(14):
        await a.send(f'{{"type": "nonsense", "ref": "b{i}"}}')
    replies = [await a.recv() for _ in range(14)]
    codes = [r["code"] for r in replies]
    assert codes[:9] == ["bad_frame"] * 9
    assert "rate_limited" in codes
    assert [r["ref"] for r in replies] == [f"b{i}" for i in range(14)]


@pytest.mark.parametrize("settings", [make_settings(rate_limit=0)], ids=["rate_limit=0"])
@pytest.mark.gen_test
async def test_rate_limit_zero_turns_flood_control_off(connect, settings):
    a, _b = await joined_pair(lambda kind: connect(kind or "websocket"))
    sent, limited = split(await blast(a, 60))
    assert len(sent) == 60 and not limited


@pytest.mark.parametrize(
    "settings", [make_settings(rate_limit=0.5, max_connections_per_address=3)], ids=["3-joins-then-1-per-2s"]
)
@pytest.mark.gen_test
async def test_joins_per_address(connect, settings):
    """An address joins as often at once as it may have connections, then at
    the rate: connect-join-leave churn cannot flood a room with presence."""
    first = [await connect() for _ in range(3)]
    for i, client in enumerate(first):
        await client.join(f"p{i}@example.com")
    await first[0].close()
    again = await connect()
    await again.send({"type": "join", "email": "churn@example.com", "ref": "j"})
    error = await again.expect("error")
    assert error["code"] == "rate_limited" and error["ref"] == "j"
    assert "127.0.0.1" in error["reason"]
    assert 0 < error["retry_after"] <= 2.0


# -- sizes ---------------------------------------------------------------------

SMALL = make_settings(max_frame=1000)  # packets may be 16 000, Tornado drops past 32 000


@pytest.mark.parametrize("settings", [SMALL], ids=["max_frame=1000"])
@pytest.mark.gen_test
async def test_a_frame_past_the_largest_is_refused_and_dropped(clients, settings):
    a, b = await joined_pair(clients)
    await a.send({"type": "message", "content": "x" * 1500, "ref": "big"})
    error = await a.expect("error")
    assert_error(error, "too_large")  # not read, so its ref is not known
    assert "1000" in error["reason"]
    # Counted in bytes: 400 three-byte characters are over 1000.
    await a.send({"type": "message", "content": "\u20ac" * 400})
    assert_error(await a.expect("error"), "too_large")
    await still_works(a, b, email=ALICE)


@pytest.mark.parametrize("settings", [SMALL], ids=["max_frame=1000"])
@pytest.mark.parametrize("kind", ["websocket", "raw-websocket", "xhr-polling", "xhr-streaming"])
@pytest.mark.gen_test
async def test_a_packet_far_too_large_closes_the_session(connect, health, settings, kind):
    a = await connect(kind)
    await a.join(ALICE)
    b = await connect()
    await b.join(BOB)
    await a.expect("presence")
    huge = json.dumps([json.dumps({"type": "message", "content": "x" * 900})] * 20)  # 18 kB
    if kind == "raw-websocket":
        await a.send(huge)
        await a.wait_closed()
        assert (a.ws_close_code, a.ws_close_reason) == (4009, "Frame too large")
    elif kind == "websocket":
        await a.send_packet(huge)
        assert await a.recv() == {"type": "_close", "code": 4009, "reason": "Frame too large"}
    else:
        response = await a.send_body(huge)
        assert response.code == 413
        assert await a.recv() == {"type": "_close", "code": 4009, "reason": "Frame too large"}
    assert await b.expect("presence") == {"type": "presence", "event": "leave", "email": ALICE, "count": 1}
    await health(connections=1)


@pytest.mark.parametrize("settings", [SMALL], ids=["max_frame=1000"])
@pytest.mark.gen_test
async def test_past_the_hard_limit_tornado_drops_it_unread(connect, settings):
    ws = await connect()
    await ws.send_raw("x" * 40_000)
    await ws.wait_closed()
    assert ws.ws_close_code == 1009  # WebSocket's "message too big"
    polling = await connect("xhr-polling")
    response = await polling.send_body("x" * 40_000)
    assert response.code == 400


# -- how many ------------------------------------------------------------------


async def refused_for_its_address(client, kind: str) -> None:
    if kind == "raw-websocket":
        await client.wait_closed()
        assert (client.ws_close_code, client.ws_close_reason) == (
            4029,
            "Too many connections from your address",
        )
    else:
        assert await client.recv() == {
            "type": "_close",
            "code": 4029,
            "reason": "Too many connections from your address",
        }


def forwarded(address: str, **more: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **more}


@pytest.mark.parametrize("settings", [make_settings(max_connections_per_address=2)], ids=["2"])
@pytest.mark.parametrize("kind", ["websocket", "raw-websocket", "xhr-polling", "xhr-streaming"])
@pytest.mark.gen_test
async def test_connections_per_address(connect, health, settings, kind):
    first = await connect()
    await first.join(ALICE)
    await connect("xhr-polling")
    await refused_for_its_address(await connect(kind), kind)
    assert (await health())["connections"] == 2
    await first.close()
    await health(connections=1)
    fourth = await connect(kind)
    await fourth.join(BOB)


@pytest.mark.parametrize("settings", [make_settings(max_connections_per_address=2)], ids=["2"])
@pytest.mark.parametrize("kind", ["websocket", "raw-websocket", "xhr-polling", "xhr-streaming"])
@pytest.mark.gen_test
async def test_behind_a_trusted_proxy_each_client_address_counts(connect, health, settings, kind, caplog):
    """The test client is on loopback, which the default trusts as a proxy."""
    client = "203.0.113.1"
    first = await connect(headers=forwarded(client))
    await first.join(ALICE)
    await connect("xhr-polling", headers=forwarded(client))
    with caplog.at_level(logging.INFO, logger="chatzilla"):
        # Its own guess at the left of the header and an X-Real-IP change nothing.
        for headers in (
            forwarded(client),
            forwarded(f"198.51.100.7, {client}"),
            forwarded(client, **{"X-Real-IP": "198.51.100.8"}),
        ):
            await refused_for_its_address(await connect(kind, headers=headers), kind)
    assert "refused a connection from 203.0.113.1" in caplog.text
    assert "198.51.100" not in caplog.text
    # Another client behind the proxy, and the proxy's own address, still connect.
    other = await connect(kind, headers=forwarded("203.0.113.2, 10.0.0.5"))
    await other.join(BOB)
    local = await connect(kind)
    await local.join("carol@example.com")
    assert (await health())["connections"] == 4


@pytest.mark.parametrize(
    "settings", [make_settings(max_connections_per_address=2, trusted_proxies=())], ids=["no proxy trusted"]
)
@pytest.mark.parametrize("kind", ["websocket", "xhr-streaming"])
@pytest.mark.gen_test
async def test_a_client_that_is_no_proxy_cannot_name_another_address(connect, health, settings, kind):
    await connect(headers=forwarded("203.0.113.1"))
    await connect("xhr-polling", headers=forwarded("203.0.113.2", **{"X-Real-IP": "203.0.113.3"}))
    await refused_for_its_address(await connect(kind, headers=forwarded("203.0.113.4")), kind)
    assert (await health())["connections"] == 2


@pytest.mark.parametrize("settings", [make_settings(max_rooms=2)], ids=["max_rooms=2"])
@pytest.mark.gen_test
async def test_rooms_per_process(connect, settings):
    for room in ("one", "two"):
        client = await connect()
        await client.send({"type": "join", "email": ALICE, "room": room})
        await client.expect("joined")
    third = await connect()
    await third.send({"type": "join", "email": ALICE, "room": "three", "ref": "j3"})
    assert_error(await third.expect("error"), "too_many_rooms", ref="j3")
    await third.send({"type": "join", "email": ALICE, "room": "two"})
    assert (await third.expect("joined"))["room"] == "two"


@pytest.mark.parametrize("settings", [make_settings(max_queued=4096, rate_limit=0)], ids=["4k"])
@pytest.mark.gen_test
async def test_frames_piling_up_close_the_session(connect, settings):
    """More frames at once than the server will keep waiting to handle."""
    a, _b = await joined_pair(lambda kind: connect(kind or "websocket"))
    frames = [json.dumps({"type": "message", "content": f"{i} " + "y" * 200}) for i in range(40)]
    await a.send_packet(json.dumps(frames))
    replies = []
    while (frame := await a.recv())["type"] != "_close":
        replies.append(frame)
    assert frame == {"type": "_close", "code": 4029, "reason": "Too much sent at once"}
    assert len(replies) < 40


# -- SockJS packets that are not lists of strings ------------------------------


@pytest.mark.parametrize(
    "body, frames",
    [
        ('"abcdefgh"', 1),  # 1.0.7 took every character for a frame
        ("42", 1),  # ...and logged a traceback for this
        ('{"type": "message"}', 1),
        ('["a", 1, null]', 3),
    ],
)
@pytest.mark.gen_test
async def test_an_xhr_send_packet_that_is_not_a_list_of_strings(connect, caplog, body, frames):
    a, b = await joined_pair(lambda kind: connect(kind or "xhr-polling"))
    with caplog.at_level(logging.WARNING):
        response = await a.send_body(body)
    assert response.code == 204
    for _ in range(frames):
        assert_error(await a.expect("error"), "bad_frame")
    await still_works(a, b, email=ALICE)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("packet", ["not json", "[[[[" * 5000, '["\\ud800"]', '["unterminated'])
@pytest.mark.gen_test
async def test_a_websocket_packet_that_is_not_json_is_a_bad_frame(connect, caplog, packet):
    a, b = await joined_pair(lambda kind: connect(kind or "websocket"))
    with caplog.at_level(logging.WARNING):
        await a.send_packet(packet)
        assert_error(await a.expect("error"), "bad_frame")
    await still_works(a, b, email=ALICE)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
