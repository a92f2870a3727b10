"""The Backend contract, the same for every backend: when append returns,
the message is stored and has been passed to deliver in this process, with
its origin; a deliver that raises does not make append fail."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.postgres import PostgresBackend
from chatzilla.backends.postgres_redis import PostgresRedisBackend
from chatzilla.backends.redis import RedisBackend
from chatzilla.backends.retention import Retention
from chatzilla.backends.sqlite import SQLiteBackend

from .helpers import redis_or_skip

REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _opened(backend):
    await backend.open()
    return backend


async def _ready(backend):
    return backend


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "postgres+redis"])
def make_backend(request, tmp_path):
    """``await make_backend()`` builds a fresh backend of the parametrized
    kind (opened, for Postgres)."""
    if request.param == "memory":
        yield lambda: _ready(MemoryBackend(Retention(messages=100)))
        return
    if request.param == "sqlite":
        yield lambda: _ready(SQLiteBackend(str(tmp_path / "chatzilla.db")))
        return
    if request.param == "postgres":
        url = request.getfixturevalue("database_url")
        yield lambda: _opened(PostgresBackend(url))
        return
    client = redis_or_skip(REDIS_URL)
    prefix = f"chatzilla-test-{uuid.uuid4().hex[:12]}"
    if request.param == "postgres+redis":
        url = request.getfixturevalue("database_url")
        yield lambda: _opened(PostgresRedisBackend(url, REDIS_URL, prefix))
    else:
        yield lambda: _ready(RedisBackend(REDIS_URL, prefix))
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_append_returns_once_stored_and_delivered(make_backend):
    async def scenario():
        backend = await make_backend()
        delivered = []
        backend.start(
            lambda room, message, origin: delivered.append((room, message.id, origin)), lambda *_: None
        )
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            seen_at_return = []
            for n in range(10):
                message, duplicate = await backend.append("lobby", "a@example.com", f"m{n}", f"r{n}", "tab")
                assert not duplicate
                seen_at_return.append(("lobby", message.id, "tab") in delivered)
            stored = await backend.page("lobby", None, None, 50)
            again, duplicate = await backend.append("lobby", "a@example.com", "m0", "r0", "tab")
            return seen_at_return, [m.content for m in stored], (again.id, duplicate), len(delivered)
        finally:
            await backend.close()

    seen_at_return, stored, again, deliveries = asyncio.run(scenario())
    assert seen_at_return == [True] * 10
    assert stored == [f"m{n}" for n in range(10)]
    assert again == (1, True)  # a retry: the first message, not delivered again
    assert deliveries == 10


def test_a_delivery_that_raises_does_not_fail_the_append(make_backend):
    def deliver(room, message, origin):
        raise RuntimeError("a bug in the hub")

    async def scenario():
        backend = await make_backend()
        backend.start(deliver, lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            message, _ = await backend.append("lobby", "a@example.com", "kept", None, "tab")
            return message, await backend.page("lobby", None, None, 10)
        finally:
            await backend.close()

    message, stored = asyncio.run(scenario())
    assert [m.id for m in stored] == [message.id] and stored[0].content == "kept"
