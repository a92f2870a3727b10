"""SQLite stays healthy under months of load.

- The -wal file stays bounded: after a long read held a snapshot through
  megabytes of writes (the WAL cannot be checkpointed past it and grows),
  the next checkpoint cuts it back to WAL_LIMIT; SQLite alone never shrinks it.
- A full disk: the database is capped with ``PRAGMA max_page_count``, past
  which SQLite fails writes with SQLITE_FULL exactly as on a full disk (a
  real full filesystem needs a small tmpfs, and so root). The cause is logged
  once (not "cannot rollback - no transaction is active" for every message),
  then at most once a minute; ``/healthz`` says degraded while writes fail;
  once space returns the next message is stored and all is well again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3

import pytest

from chatzilla.app import make_app
from chatzilla.backends.base import StorageError
from chatzilla.backends.sqlite import FAILURE_LOG_EVERY, WAL_LIMIT, SQLiteBackend, connect, migrate

from .conftest import make_settings
from .helpers import Clock


def wal_size(path) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


async def write(backend, count: int, size: int, room: str = "lobby") -> None:
    """``count`` messages of ``size`` characters, many at once (group commit)."""
    for start in range(0, count, 50):
        await asyncio.gather(
            *(
                backend.append(room, "a@example.com", f"{n} " + "x" * size, None, None)
                for n in range(start, min(count, start + 50))
            )
        )


@pytest.mark.gen_test(timeout=120)
async def test_the_wal_is_cut_back_after_a_long_read(tmp_path):
    path = tmp_path / "wal.db"
    backend = SQLiteBackend(str(path))
    backend.start(lambda *a: None, lambda *a: None)
    try:
        await write(backend, 50, 1000)
        # A long read (a backup, a slow reader) holds its snapshot: nothing
        # written meanwhile can be checkpointed, so the WAL grows.
        reader = sqlite3.connect(str(path), isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()
        await write(backend, 700, 20_000)
        grown = wal_size(path)
        assert grown > 1.5 * WAL_LIMIT
        reader.execute("COMMIT")
        reader.close()
        # Writes go on: checkpoints complete again, and the file is cut back.
        sizes = []
        for _ in range(10):
            await write(backend, 50, 20_000)
            sizes.append(wal_size(path))
        assert max(sizes[-5:]) <= WAL_LIMIT, (grown, sizes)
    finally:
        await backend.close()


def full_backend(tmp_path, clock) -> SQLiteBackend:
    """A database that may grow by 40 pages (160 KiB) past its empty schema.

    The cap is counted from the schema's own size, measured on a migrated
    empty file: a fixed cap was eaten by each new table and index (schema 11
    takes 28 pages), leaving room for only a few messages.
    """
    empty = tmp_path / "empty.db"
    con = connect(str(empty))
    try:
        migrate(con)
        (schema_pages,) = con.execute("PRAGMA page_count").fetchone()
    finally:
        con.close()
    return SQLiteBackend(str(tmp_path / "full.db"), clock=clock, max_pages=schema_pages + 40)


async def fill_up(backend) -> int:
    """Append until the database is full; how many were stored."""
    stored = 0
    while True:
        try:
            await backend.append("lobby", "a@example.com", f"{stored} " + "y" * 2000, None, None)
        except StorageError:
            return stored
        stored += 1
        assert stored < 1000, "the database never filled up"


@pytest.mark.gen_test(timeout=60)
async def test_a_full_disk_is_logged_once_with_its_cause_and_recovers(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="chatzilla.sqlite")
    clock = Clock(1_000_000.0)
    backend = full_backend(tmp_path, clock)
    backend.start(lambda *a: None, lambda *a: None)
    try:
        stored = await fill_up(backend)
        assert stored > 10 and not backend.healthy
        for _ in range(200):  # a busy room keeps sending
            with pytest.raises(StorageError):
                await backend.append("lobby", "b@example.com", "z" * 2000, None, None)
            clock.now += 0.1  # 20 s in all: less than a minute
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "database or disk is full" in errors[0].getMessage()
        assert "SQLITE_FULL" in errors[0].getMessage()
        assert "cannot rollback" not in caplog.text
        # A minute on: one more line, with the count of what failed meanwhile.
        clock.now += FAILURE_LOG_EVERY
        with pytest.raises(StorageError):
            await backend.append("lobby", "b@example.com", "z" * 2000, None, None)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 2 and "201 more attempts failed" in errors[1].getMessage()

        # Space returns (the operator removes old messages): the next
        # message is stored, health is back, and the log says so.
        with sqlite3.connect(str(tmp_path / "full.db"), isolation_level=None) as other:
            other.execute("DELETE FROM messages WHERE id <= ?", (stored // 2,))
        message, _ = await backend.append("lobby", "b@example.com", "back", None, None)
        assert message.id == stored + 1 and backend.healthy
        assert "stored in" in caplog.text and "again" in caplog.text
        # Nothing acknowledged was lost, nothing refused was stored.
        page = await backend.page("lobby", None, None, 1000)
        assert [m.id for m in page] == list(range(stored // 2 + 1, stored + 2))
    finally:
        await backend.close()


@pytest.fixture
def app(io_loop, tmp_path):
    backend = full_backend(tmp_path, Clock(1_000_000.0))
    application = make_app(make_settings(rate_limit=0), backend=backend, io_loop=io_loop)
    yield application
    io_loop.run_sync(application.shutdown)


@pytest.mark.gen_test(timeout=60)
async def test_healthz_says_degraded_while_writes_fail(app, connect, health):
    client = await connect()
    await client.join("a@example.com")
    assert (await health())["status"] == "ok"
    n = 0
    while True:
        n += 1
        await client.send({"type": "message", "content": "w" * 2000, "ref": f"r{n}"})
        frame = await client.recv()
        if frame["type"] == "error":
            break
        assert frame["type"] == "sent" and n < 1000
    assert frame["code"] == "unavailable"
    await health(status="degraded")
