"""SockJS heartbeats: one asyncio timer a session (chatzilla.connection.ChatSession).

A session sends ``h`` every ``heartbeat_delay`` seconds while it has a
handler, on a WebSocket and on the HTTP transports alike, and once it ends
no timer of its keeps it alive.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from chatzilla.connection import ChatSession

from .conftest import make_settings

FAST = pytest.mark.parametrize("settings", [make_settings(heartbeat_delay=0.2)], ids=["heartbeat_delay=0.2"])


@FAST
@pytest.mark.gen_test(timeout=20)
async def test_a_websocket_hears_a_heartbeat_every_delay(base_url):
    ws = await websocket_connect(base_url.replace("http", "ws", 1) + "/chat/000/beats/websocket")
    assert await ws.read_message() == "o"
    started = time.monotonic()
    for _ in range(3):
        assert await asyncio.wait_for(ws.read_message(), 5) == "h"
    # Three, each a delay after the one before (no faster, and not bunched).
    assert time.monotonic() - started >= 3 * 0.2 * 0.9
    ws.close()


@FAST
@pytest.mark.gen_test(timeout=20)
async def test_a_poll_with_nothing_to_say_ends_with_a_heartbeat(base_url):
    client = AsyncHTTPClient()
    url = base_url + "/chat/000/polled/xhr"
    opened = await client.fetch(HTTPRequest(url, method="POST", body=b""))
    assert opened.body == b"o\n"
    for _ in range(2):
        started = time.monotonic()
        poll = await client.fetch(HTTPRequest(url, method="POST", body=b"", request_timeout=5))
        assert poll.body == b"h\n"
        assert time.monotonic() - started >= 0.2 * 0.9


@pytest.mark.gen_test(timeout=20)
async def test_a_closed_session_is_not_kept_by_its_heartbeat(app, connect):
    # The default delay (25 s): sockjs-tornado's own timer stayed in the
    # loop that long after the session ended, holding it.
    client = await connect("websocket")
    await client.join("a@example.com")
    connections: list = []
    app.router.hub.close_where(lambda c: connections.append(c) and False, 4000, "closes nobody")
    (connection,) = connections
    session = connection.session
    assert isinstance(session, ChatSession)
    gone = weakref.ref(session)
    del connection, session
    connections.clear()
    await client.close()
    deadline = time.monotonic() + 5
    while gone() is not None and time.monotonic() < deadline:
        gc.collect()
        await asyncio.sleep(0.05)
    assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())]
