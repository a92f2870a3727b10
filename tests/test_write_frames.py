"""chatzilla.transports.write_frames: a turn's frames by each transport kind,
on a real server: one SockJS packet on a WebSocket, one message per frame on
the raw endpoint, queued for the next poll over HTTP; nothing written past
the limit."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.websocket import websocket_connect

from chatzilla.outbox import raw_frames, sockjs_packet
from chatzilla.transports import Backlog, write_frames

from .sockjs_client import TIMEOUT

TEXTS = ['{"type":"t","n":1}', '{"type":"t","n":2}']
LIMIT = 1 << 20
#: What a SockJS client reads: the frames as one packet.
PACKET = "a[" + ",".join(map(json.dumps, TEXTS)) + "]"


async def _only_session(app, count: int = 1):
    """The session of the one (or ``count``) connection(s) open on ``app``."""
    for _ in range(500):
        # The hub's own set of open connections: the server's, not a stand-in.
        connections = list(app.hub._clients)
        if len(connections) == count:
            return [connection.session for connection in connections]
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} connections, have {len(app.hub._clients)}")


async def _sockjs_websocket(base_url, path: str = "000/writeframes"):
    ws = await websocket_connect(f"{base_url.replace('http', 'ws', 1)}/chat/{path}/websocket")
    assert await asyncio.wait_for(ws.read_message(), TIMEOUT) == "o"
    return ws


@pytest.mark.gen_test
async def test_a_sockjs_websocket_gets_the_turns_frames_as_one_packet(app, base_url):
    ws = await _sockjs_websocket(base_url)
    (session,) = await _only_session(app)
    cache: dict = {}
    write_frames(session, TEXTS, cache, LIMIT)
    assert await asyncio.wait_for(ws.read_message(), TIMEOUT) == PACKET
    assert list(cache.values()) == [sockjs_packet(TEXTS)]
    ws.close()


@pytest.mark.gen_test
async def test_connections_written_in_one_turn_share_the_packets_bytes(app, base_url):
    first = await _sockjs_websocket(base_url, "001/writeframes1")
    second = await _sockjs_websocket(base_url, "002/writeframes2")
    sessions = await _only_session(app, 2)
    cache: dict = {}
    for session in sessions:
        write_frames(session, TEXTS, cache, LIMIT)
    assert len(cache) == 1
    for ws in (first, second):
        assert await asyncio.wait_for(ws.read_message(), TIMEOUT) == PACKET
        ws.close()


@pytest.mark.gen_test
async def test_the_raw_websocket_gets_one_message_per_frame(app, base_url):
    ws = await websocket_connect(f"{base_url.replace('http', 'ws', 1)}/chat/websocket")
    (session,) = await _only_session(app)
    cache: dict = {}
    write_frames(session, TEXTS, cache, LIMIT)
    assert [await asyncio.wait_for(ws.read_message(), TIMEOUT) for _ in TEXTS] == TEXTS
    assert list(cache.values()) == [raw_frames(TEXTS)]
    ws.close()


@pytest.mark.gen_test
async def test_an_http_transport_gets_them_with_its_next_poll(app, connect):
    client = await connect("xhr-polling")
    (session,) = await _only_session(app)
    write_frames(session, TEXTS, {}, LIMIT)
    assert [await client.recv() for _ in TEXTS] == [json.loads(text) for text in TEXTS]


@pytest.mark.gen_test
@pytest.mark.parametrize("kind", ["websocket", "raw-websocket", "xhr-polling"])
async def test_nothing_is_written_past_the_limit(app, connect, kind):
    client = await connect(kind)
    (session,) = await _only_session(app)
    size = sum(map(len, TEXTS))
    with pytest.raises(Backlog) as refused:
        write_frames(session, TEXTS, {}, size - 1)
    assert refused.value.waiting >= size
    await client.nothing()
    write_frames(session, TEXTS, {}, LIMIT)  # within the limit: written
    assert [await client.recv() for _ in TEXTS] == [json.loads(text) for text in TEXTS]
