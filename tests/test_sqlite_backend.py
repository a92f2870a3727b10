"""The durable backends: ids, group commit, retries and pages on SQLite (a
real file) and on Postgres (a real database of the test's own), the same
tests for both; then SQLite's own (upgrades, pragmas)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from chatzilla.backends.base import DEDUP_WINDOW, StorageError
from chatzilla.backends.postgres import PostgresBackend
from chatzilla.backends.sqlite import SCHEMA_VERSION, SQLiteBackend, connect, migrate

from .helpers import Clock
from .postgres import admin


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "chat.db")


class Store:
    """One durable backend's way to open (again) on the same data, and to
    delete a room's messages behind its back."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where

    async def make(self, clock=None):
        clock = clock or time.time
        if self.kind == "sqlite":
            return SQLiteBackend(self.where, clock=clock)
        backend = PostgresBackend(self.where, clock=clock)
        await backend.open()
        return backend

    def delete_messages(self, room: str) -> None:
        if self.kind == "sqlite":
            con = sqlite3.connect(self.where)
            con.execute("DELETE FROM messages WHERE room = ?", (room,))
            con.commit()
            con.close()
        else:
            admin(self.where, f"DELETE FROM messages WHERE room = '{room}'")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, db) -> Store:
    if request.param == "postgres":
        return Store("postgres", request.getfixturevalue("database_url"))
    return Store("sqlite", db)


def run(coro):
    return asyncio.run(coro)


async def _open(store, clock=None, delivered=None, deliver=None):
    """``store``'s backend, started; someone is in lobby and dev, so a
    backend that reads only the rooms it has people in reads those."""
    backend = await store.make(clock)
    backend.start(
        deliver
        or (
            lambda room, message, origin: (delivered if delivered is not None else []).append(
                (room, message.id, origin)
            )
        ),
        lambda room, change, origin: None,
    )
    for room in ("lobby", "dev"):
        await backend.enter(room, "watcher@example.com", "watcher")
    return backend


def test_ids_per_room_and_never_reused_after_restart(store):
    async def scenario():
        backend = await _open(store)
        ids = [
            (await backend.append(room, "a@example.com", "hi", None, None))[0].id
            for room in ("lobby", "lobby", "dev", "lobby")
        ]
        await backend.close()
        assert ids == [1, 2, 1, 3]
        # Deleting messages must not free their ids.
        store.delete_messages("lobby")
        backend = await _open(store)
        message, duplicate = await backend.append("lobby", "a@example.com", "again", None, None)
        await backend.close()
        assert (message.id, duplicate) == (4, False)

    run(scenario())


def test_messages_survive_reopening(store):
    async def scenario():
        backend = await _open(store)
        for n in range(5):
            await backend.append("lobby", "a@example.com", f"m{n}", None, None)
        await backend.close()
        backend = await _open(store)
        page = await backend.page("lobby", None, None, 50)
        await backend.close()
        assert [m.content for m in page] == ["m0", "m1", "m2", "m3", "m4"]

    run(scenario())


def test_concurrent_appends_share_transactions(store):
    async def scenario():
        delivered = []
        backend = await _open(store, delivered=delivered)
        results = await asyncio.gather(
            *(backend.append("lobby", "a@example.com", f"m{n}", f"r{n}", n) for n in range(200))
        )
        commits = backend.commits
        await backend.close()
        return results, delivered, commits

    results, delivered, commits = run(scenario())
    assert [m.id for m, _ in results] == list(range(1, 201))
    assert [origin for _, _, origin in delivered] == list(range(200))
    # 200 messages arriving together must not cost 200 disk flushes.
    assert commits <= 2


def test_a_failing_delivery_loses_no_acknowledgement(store, caplog):
    """A bug in the fan-out of one message must not leave the appends of its
    batch waiting forever (their connections would hang)."""

    async def scenario():
        delivered = []

        def deliver(room, message, origin):
            if message.id == 3:
                raise RuntimeError("fan-out bug")
            delivered.append(message.id)

        backend = await _open(store, deliver=deliver)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(backend.append("lobby", "a@example.com", f"m{n}", None, None) for n in range(6))
            ),
            5,
        )
        await backend.close()
        return [m.id for m, _ in results], delivered

    ids, delivered = run(scenario())
    assert ids == [1, 2, 3, 4, 5, 6]
    assert delivered == [1, 2, 4, 5, 6]
    assert "could not deliver message 3 of room lobby" in caplog.text


def test_retried_ref_is_acknowledged_once(store):
    async def scenario():
        clock, delivered = Clock(1_764_240_000.0), []
        backend = await _open(store, clock=clock, delivered=delivered)
        first, dup1 = await backend.append("lobby", "a@example.com", "hello", "r-1", "tab1")
        clock.now += 5
        again, dup2 = await backend.append("lobby", "a@example.com", "hello", "r-1", "tab1")
        other_sender, dup3 = await backend.append("lobby", "b@example.com", "hello", "r-1", "tab2")
        other_room, dup4 = await backend.append("dev", "a@example.com", "hello", "r-1", "tab1")
        clock.now += DEDUP_WINDOW + 1
        late, dup5 = await backend.append("lobby", "a@example.com", "hello", "r-1", "tab1")
        stored = await backend.page("lobby", None, None, 50)
        await backend.close()
        return first, again, other_sender, other_room, late, (dup1, dup2, dup3, dup4, dup5), delivered, stored

    first, again, other_sender, other_room, late, dups, delivered, stored = run(scenario())
    assert dups == (False, True, False, False, False)
    assert (again.id, again.ts) == (first.id, first.ts)
    assert other_sender.id == 2 and other_room.id == 1 and late.id == 3
    assert len(delivered) == 4
    assert [m.id for m in stored] == [1, 2, 3]


def test_page_bounds(store):
    async def scenario():
        backend = await _open(store)
        for n in range(1, 11):
            await backend.append("lobby", "a@example.com", f"m{n}", None, None)
        pages = {
            "newest3": await backend.page("lobby", None, None, 3),
            "after7": await backend.page("lobby", 7, None, 100),
            "before4": await backend.page("lobby", None, 4, 100),
            "between": await backend.page("lobby", 2, 6, 2),
            "none": await backend.page("lobby", 10, None, 5),
            "other_room": await backend.page("dev", None, None, 5),
        }
        await backend.close()
        return {k: [m.id for m in v] for k, v in pages.items()}

    assert run(scenario()) == {
        "newest3": [8, 9, 10],
        "after7": [8, 9, 10],
        "before4": [1, 2, 3],
        "between": [4, 5],
        "none": [],
        "other_room": [],
    }


def test_older_file_is_upgraded_in_place(db):
    con = connect(db)
    assert migrate(con, upto=1) == 0
    con.executemany(
        "INSERT INTO messages (room, id, sender, content, ts, ref) VALUES (?, ?, ?, ?, ?, ?)",
        [("lobby", n, "a@example.com", f"old {n}", 1.0 + n, None) for n in (1, 2, 3)],
    )
    con.close()

    async def scenario():
        backend = await _open(Store("sqlite", db))
        kept = await backend.page("lobby", None, None, 10)
        new, _ = await backend.append("lobby", "a@example.com", "new", None, None)
        await backend.close()
        return kept, new

    kept, new = run(scenario())
    assert [m.content for m in kept] == ["old 1", "old 2", "old 3"]
    assert new.id == 4
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_file_is_refused(db):
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StorageError, match="newer"):
        SQLiteBackend(db)


def test_unwritable_path_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match="cannot open the database"):
        SQLiteBackend(str(tmp_path / "missing-dir" / "chat.db"))


def test_wal_and_full_sync(db):
    async def scenario():
        backend = await _open(Store("sqlite", db))
        await backend.append("lobby", "a@example.com", "hi", None, None)
        await backend.close()

    run(scenario())
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
