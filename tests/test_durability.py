"""Acknowledged messages survive a clean restart and a kill -9 of the server."""

from __future__ import annotations

import asyncio
import signal

import pytest
from tornado.websocket import WebSocketClosedError

from .server_process import ServerProcess
from .sockjs_client import WebSocketClient

#: Messages go out as fast as the server takes them.
NO_FLOOD_LIMIT = ("--rate-limit", "0")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "chat.db")


async def _history_of_fresh_client(url: str) -> list[dict]:
    client = await WebSocketClient(url).connect()
    try:
        await client.send({"type": "join", "email": "reader@example.com", "since": 0})
        return (await client.expect("joined"))["history"]
    finally:
        await client.close()


def test_restart_keeps_every_acknowledged_message(db):
    server = ServerProcess("--db", db, *NO_FLOOD_LIMIT).start()

    async def send(n: int) -> list[int]:
        client = await WebSocketClient(server.url).connect()
        await client.join("alice@example.com")
        ids = []
        for i in range(n):
            await client.send({"type": "message", "content": f"before restart {i}", "ref": f"r{i}"})
            ids.append((await client.expect("sent"))["id"])
        await client.close()
        return ids

    try:
        acked = asyncio.run(send(30))
    finally:
        status, _ = server.stop(signal.SIGTERM)
    assert status == 0

    server = ServerProcess("--db", db, *NO_FLOOD_LIMIT).start()
    try:
        history = asyncio.run(_history_of_fresh_client(server.url))
    finally:
        server.stop()
    assert [m["id"] for m in history] == acked
    assert [m["content"] for m in history] == [f"before restart {i}" for i in range(30)]


def test_kill_9_loses_no_acknowledged_message(db):
    server = ServerProcess("--db", db, *NO_FLOOD_LIMIT).start()
    acked: list[int] = []

    async def send_until_killed() -> None:
        client = await WebSocketClient(server.url).connect()
        try:
            await client.join("alice@example.com")
            i = 0
            while not client.closed:
                try:
                    await client.send({"type": "message", "content": f"m{i}", "ref": f"r{i}"})
                    frame = await client.recv(timeout=2)
                except (TimeoutError, OSError, WebSocketClosedError):
                    return  # the server is gone
                if frame["type"] != "sent":
                    return
                acked.append(frame["id"])
                if len(acked) == 150:
                    # Killed mid-stream: the next message is in flight right now.
                    server.proc.send_signal(signal.SIGKILL)
                i += 1
        finally:
            await client.close()

    try:
        asyncio.run(asyncio.wait_for(send_until_killed(), 30))
    finally:
        status, _ = server.stop(signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert len(acked) >= 150

    server = ServerProcess("--db", db, *NO_FLOOD_LIMIT).start()
    try:
        history = asyncio.run(_history_of_fresh_client(server.url))
    finally:
        server.stop()
    stored = [m["id"] for m in history]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    assert set(acked) <= set(stored), f"lost: {sorted(set(acked) - set(stored))}"
    assert stored == sorted(stored)
