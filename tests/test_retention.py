"""Retention: explicit, and the same on every backend.

By default nothing acknowledged is ever removed (Redis streams used to be
trimmed at about 10,000 entries, silently). ``retention_days`` and
``retention_messages`` remove old messages on purpose, on the memory, SQLite
and Redis backends alike; what is gone is said honestly: ``more`` is false
and ``truncated`` is true where a client asked for removed messages.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis
import redis.asyncio

from chatzilla.backends import redis as redis_backend
from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.postgres import PostgresBackend
from chatzilla.backends.redis import CHANGES_KEPT, RedisBackend
from chatzilla.backends.retention import KEEP_ALL, Retention, truncated
from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.chat import EDIT, Change

from .conftest import make_settings
from .helpers import Clock
from .test_redis import prefix, redis_url  # noqa: F401 (fixtures)

DAY = 86400.0


# -- the rule ------------------------------------------------------------------------


def test_the_rule_keeps_the_newest_n_and_what_is_younger_than_the_days():
    times = {i: 1000.0 + i * 3600 for i in range(1, 101)}  # one an hour
    assert KEEP_ALL.first_kept(1, 100, times[100], times.__getitem__) == 1
    assert Retention(messages=10).first_kept(1, 100, 0, times.__getitem__) == 91
    # A day: the messages of the last 24 hours, the one exactly a day old too (76..100).
    assert Retention(days=1).first_kept(1, 100, times[100], times.__getitem__) == 76
    # Both: the stricter wins; and a room past both keeps nothing.
    assert Retention(days=1, messages=5).first_kept(1, 100, times[100], times.__getitem__) == 96
    assert Retention(days=1).first_kept(1, 100, times[100] + 2 * DAY, times.__getitem__) == 101
    # Never below what was removed already.
    assert Retention(days=30).first_kept(50, 100, times[100], times.__getitem__) == 50


def test_truncated_means_something_asked_for_was_removed():
    assert not truncated(1, 100, 0, None)  # nothing removed
    assert truncated(91, 100, 0, None)  # 1..90 are gone
    assert not truncated(91, 100, 90, None)  # caught up since 90: nothing missed is gone
    assert truncated(91, 100, 50, None)
    assert not truncated(91, 100, 0, 1)  # before 1: nothing ever existed there
    assert truncated(101, 100, 0, None)  # everything is gone
    assert not truncated(1, 0, 0, None)  # a room with no message


# -- every backend ---------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def backend_kind(request):
    return request.param


@pytest.fixture
def make_backend(backend_kind, tmp_path, request, io_loop):
    """``await make_backend(retention, clock)``: a started backend of the kind."""
    made = []

    async def make(retention: Retention, clock: Clock):
        if backend_kind == "memory":
            backend = MemoryBackend(retention, clock=clock)
        elif backend_kind == "sqlite":
            backend = SQLiteBackend(str(tmp_path / "r.db"), clock=clock, retention=retention)
        elif backend_kind == "postgres":
            backend = PostgresBackend(
                request.getfixturevalue("database_url"), clock=clock, retention=retention
            )
            await backend.open()
        else:
            url, name = request.getfixturevalue("redis_url"), request.getfixturevalue("prefix")
            backend = RedisBackend(url, name, clock=clock, retention=retention)
        backend.start(lambda *a: None, lambda *a: None)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        io_loop.run_sync(backend.close)


async def prune(backend) -> None:
    """Apply retention now (memory applies it as it goes)."""
    if hasattr(backend, "prune"):
        await backend.prune()


async def fill(backend, clock: Clock, count: int, every: float = 60.0, room: str = "lobby") -> list[int]:
    # Someone is in the room: a Redis process reads its stream, and each
    # append returns once delivered.
    await backend.enter(room, "a@example.com", object())
    ids = []
    for n in range(count):
        message, _ = await backend.append(room, "a@example.com", f"m{n}", None, None)
        ids.append(message.id)
        clock.now += every
    return ids


@pytest.mark.gen_test(timeout=30)
async def test_by_default_every_message_is_kept(make_backend):
    clock = Clock(1_000_000.0)
    backend = await make_backend(KEEP_ALL, clock)
    ids = await fill(backend, clock, 300, every=DAY)  # 300 days of messages
    await prune(backend)
    assert [m.id for m in await backend.page("lobby", None, None, 1000)] == ids
    assert await backend.bounds("lobby") == (1, 300)


@pytest.mark.gen_test(timeout=30)
async def test_retention_messages_keeps_the_newest_of_each_room(make_backend):
    clock = Clock(1_000_000.0)
    backend = await make_backend(Retention(messages=5), clock)
    lobby = await fill(backend, clock, 12)
    dev = await fill(backend, clock, 3, room="dev")
    await prune(backend)
    assert [m.id for m in await backend.page("lobby", None, None, 100)] == lobby[-5:]
    assert [m.id for m in await backend.page("dev", None, None, 100)] == dev
    assert await backend.bounds("lobby") == (8, 12)
    # Ids go on from where they were.
    message, _ = await backend.append("lobby", "a@example.com", "next", None, None)
    assert message.id == 13


@pytest.mark.gen_test(timeout=30)
async def test_retention_days_removes_what_is_older(make_backend):
    clock = Clock(1_000_000.0)
    backend = await make_backend(Retention(days=2), clock)
    await fill(backend, clock, 10, every=DAY / 2)  # 5 days, one every 12 hours
    await prune(backend)
    kept = [m.id for m in await backend.page("lobby", None, None, 100)]
    # Now is 5 days after the first: the last 2 days are ids 7..10 (the
    # 7th is exactly 2 days old: kept).
    assert kept == [7, 8, 9, 10]
    clock.now += 3 * DAY
    await prune(backend)
    assert await backend.page("lobby", None, None, 100) == []
    assert await backend.bounds("lobby") == (11, 10)


# -- what clients are told -------------------------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [make_settings(storage="memory", retention_messages=5)])
async def test_clients_are_told_what_is_gone(app, connect):
    for n in range(12):
        await app.backend.append("lobby", "w@example.com", f"m{n}", None, None)
    reader = await connect()
    await reader.send({"type": "join", "email": "r@example.com", "since": 3})
    joined = await reader.expect("joined")
    # 4..7 were missed and are gone: said, with no more to fetch.
    assert [m["id"] for m in joined["history"]] == [8, 9, 10, 11, 12]
    assert joined["truncated"] is True and "more" not in joined
    await reader.send({"type": "history", "before": 8})
    page = await reader.expect("history")
    assert page == {"type": "history", "before": 8, "messages": [], "more": False, "truncated": True}
    # Caught up since 7: nothing missed is gone.
    other = await connect()
    await other.send({"type": "join", "email": "o@example.com", "since": 7})
    joined = await other.expect("joined")
    assert "truncated" not in joined and "more" not in joined


@pytest.mark.gen_test
async def test_nothing_removed_means_no_truncated(app, connect):
    for n in range(3):
        await app.backend.append("lobby", "w@example.com", f"m{n}", None, None)
    reader = await connect()
    joined = await reader.join("r@example.com")
    assert "truncated" not in joined and "more" not in joined
    await reader.send({"type": "history", "before": 1})
    assert await reader.expect("history") == {"type": "history", "before": 1, "messages": [], "more": False}


# -- Redis keeps everything ------------------------------------------------------------


@pytest.mark.gen_test(timeout=120)
async def test_redis_keeps_more_than_ten_thousand_messages(redis_url, prefix):  # noqa: F811
    """Its streams were trimmed at about 10,000 entries: 2,300 of 12,330
    acknowledged messages were gone, and nobody was told."""
    backend = RedisBackend(redis_url, prefix)
    backend.start(lambda *a: None, lambda *a: None)
    try:
        count = 10_500
        await backend.enter("lobby", "a@example.com", object())
        for start in range(0, count, 20):  # a few at a time: fewer round trips to wait for
            await asyncio.gather(
                *(
                    backend.append("lobby", "a@example.com", f"m{n}", None, None)
                    for n in range(start, min(count, start + 20))
                )
            )
        first = await backend.page("lobby", None, 3, 10)
        assert [m.id for m in first] == [1, 2]
        with contextlib.closing(redis.Redis.from_url(redis_url)) as client:
            assert client.xlen(f"{prefix}:stream:lobby") == count
        assert await backend.bounds("lobby") == (1, count)
    finally:
        await backend.close()


@pytest.mark.gen_test(timeout=30)
async def test_changes_to_removed_messages_do_not_hide_later_changes(make_backend):
    """A catch-up on changes asks for the first ``limit`` changed messages
    after a change id; those retention removed are left out, and the ones
    still kept behind them come all the same: a page of removed messages
    alone must not read as "no more changes"."""
    clock = Clock(1_000_000.0)
    backend = await make_backend(Retention(messages=25), clock)
    ids = await fill(backend, clock, 20)
    for message_id in ids:
        await backend.change("lobby", message_id, Change(EDIT, "edited"))
    ids += await fill(backend, clock, 30)  # 1 to 25 are removed
    kept, _ = await backend.change("lobby", ids[-1], Change(EDIT, "the last, edited"))
    await prune(backend)
    changed, rev = await backend.changes("lobby", 0, 10)
    assert rev == 21
    assert [(m.id, m.rev, m.content) for m in changed] == [(ids[-1], 21, "the last, edited")]
    assert kept is not None and kept.rev == 21


@pytest.mark.gen_test(timeout=60)
async def test_redis_keeps_a_bounded_change_stream(redis_url, prefix, monkeypatch):  # noqa: F811
    """Redis passes each change to every process through a stream of the
    message's states (its text and reactions each time): it is for live news
    only, so it keeps the latest :data:`CHANGES_KEPT` (the catch-up reads
    the messages themselves), or one person editing or reacting over and
    over would fill Redis's memory for good, and keep every edited text."""
    # A tenth of the real figure, so that three times it are a few hundred
    # changes (1,500 of them took over 60 s at a load of 20).
    kept_at_most = CHANGES_KEPT // 10
    monkeypatch.setattr(redis_backend, "CHANGES_KEPT", kept_at_most)
    edits = 3 * kept_at_most
    delivered = []
    backend = RedisBackend(redis_url, prefix, clock=Clock(1_000_000.0))
    backend.start(lambda room, message, origin: delivered.append(message.rev), lambda *a: None)
    try:
        ids = await fill(backend, Clock(1_000_000.0), 1)
        for n in range(edits):
            await backend.change("lobby", ids[0], Change(EDIT, f"edit {n}"))
        while not delivered or delivered[-1] != edits:  # live news go on (the test's timeout bounds it)
            await asyncio.sleep(0.025)
        changed, rev = await backend.changes("lobby", 0, 10)
        assert [(m.rev, m.content) for m in changed] == [(rev, f"edit {edits - 1}")]
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            kept = await client.xlen(f"{prefix}:cstream:lobby")
        finally:
            await client.aclose()
        # Trimmed by whole nodes of the stream (100 entries by default).
        assert kept <= kept_at_most + 100, kept
    finally:
        await backend.close()
