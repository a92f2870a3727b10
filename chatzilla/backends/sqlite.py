"""Durable history in SQLite, written off the event loop by one writer thread.

A message is committed (WAL mode, ``synchronous=FULL``: the commit is on disk)
before it is acknowledged or delivered. Group commit: appends that arrive
while a transaction is being written wait and go into the next one together,
so a burst costs one disk flush, not one per message. Reads run on a second
thread with their own connection, which WAL lets proceed beside the writer.

Who is present is counted in memory; a clean shutdown writes it down, and
the next start counts those people present, with no connection, for the
grace period: the pages that come back to the restarted server show no one
coming or going. (After a crash nothing was written: the people who come
back are announced as joining.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from ..chat import Change, Message, Quote, changed, parse_reactions, reactions_text
from .base import CHANGE, DEDUP_WINDOW, Announce, Deliver, StorageError, deliver_stored
from .presence import LocalPresence
from .retention import KEEP_ALL, PRUNE_BATCH, PRUNE_EVERY, Retention

log = logging.getLogger("chatzilla.sqlite")

#: Schema migrations, applied in order; ``PRAGMA user_version`` holds how many
#: a file has had, so an older file is upgraded in place on start.
MIGRATIONS: tuple[str, ...] = (
    # 1: messages, numbered per room.
    """
    CREATE TABLE messages (
        room TEXT NOT NULL,
        id INTEGER NOT NULL,
        sender TEXT NOT NULL,
        content TEXT NOT NULL,
        ts REAL NOT NULL,
        ref TEXT,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    """,
    # 2: each room's last id, kept apart from the messages so that ids are
    # never reused even if old messages are pruned one day; and an index for
    # finding a retried message by its sender's ref.
    """
    CREATE TABLE rooms (
        room TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO rooms (room, last_id) SELECT room, MAX(id) FROM messages GROUP BY room;
    CREATE INDEX messages_by_ref ON messages (room, sender, ref) WHERE ref IS NOT NULL;
    """,
    # 3: who was present at the last clean shutdown, in order of arrival per
    # room; read and emptied at the next start.
    """
    CREATE TABLE presence (
        room TEXT NOT NULL,
        position INTEGER NOT NULL,
        email TEXT NOT NULL,
        PRIMARY KEY (room, position)
    ) WITHOUT ROWID;
    """,
    # 4: sign-in (chatzilla.accounts): people, with their public id and
    # display name; sign-in links, sessions and bot tokens, by the SHA-256
    # digest of their secret, never the secret itself.
    """
    CREATE TABLE people (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE signin_links (
        digest TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        room TEXT NOT NULL,
        expires REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        digest TEXT PRIMARY KEY,
        person TEXT NOT NULL,
        expires REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE bot_tokens (
        digest TEXT PRIMARY KEY,
        person TEXT NOT NULL,
        label TEXT NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: the lowest id each room keeps: retention removed every one below.
    """
    ALTER TABLE rooms ADD COLUMN first_id INTEGER NOT NULL DEFAULT 1;
    """,
    # 6: edits and deletes: a changed message holds the id of its latest
    # change (rev, counted per room in rooms.last_rev, never reused), found
    # by it for a catch-up; a deleted one keeps its row, with no content.
    """
    ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN edited REAL;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rooms ADD COLUMN last_rev INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_by_rev ON messages (room, rev) WHERE rev > 0;
    """,
    # 7: moderation (chatzilla.moderation_store): each room's owner and
    # moderators (one owner at most), mutes and bans in force or expired,
    # and the audit log of every change.
    """
    CREATE TABLE room_roles (
        room TEXT NOT NULL,
        person TEXT NOT NULL,
        role TEXT NOT NULL,
        PRIMARY KEY (room, person)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX room_owner ON room_roles (room) WHERE role = 'owner';
    CREATE TABLE sanctions (
        room TEXT NOT NULL,
        person TEXT NOT NULL,
        kind TEXT NOT NULL,
        until REAL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        ts REAL NOT NULL,
        PRIMARY KEY (room, person, kind)
    ) WITHOUT ROWID;
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        action TEXT NOT NULL
    );
    CREATE INDEX audit_log_by_room ON audit_log (room, seq);
    """,
    # 8: reactions: JSON [[emoji, [who...]], ...] (NULL: none).
    """
    ALTER TABLE messages ADD COLUMN reactions TEXT;
    """,
    # 9: rooms with rules (chatzilla.moderation_store): a topic, private
    # (invited people only) and read-only (moderators only speak); who is
    # invited to a private room.
    """
    CREATE TABLE room_rules (
        room TEXT PRIMARY KEY,
        topic TEXT NOT NULL,
        private INTEGER NOT NULL,
        read_only INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE invitations (
        room TEXT NOT NULL,
        person TEXT NOT NULL,
        PRIMARY KEY (room, person)
    ) WITHOUT ROWID;
    """,
    # 10: full-text search (FTS5): each message's text under the document
    # id no * 2^40 + id, where no numbers the room (rooms.no), so a room's
    # messages are one range of document ids, searched newest first by
    # FTS5 itself; deleted messages are not in it. Prefix indexes of 1 to 3
    # characters: the last word of a search is a prefix, and without them
    # "w1"* in a room of 100,000 messages took 66 ms against 0.1 ms.
    """
    ALTER TABLE rooms ADD COLUMN no INTEGER;
    UPDATE rooms SET no = (SELECT count(*) FROM rooms AS r WHERE r.room <= rooms.room);
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3'
    );
    INSERT INTO messages_fts (rowid, content)
        SELECT r.no * 1099511627776 + m.id, m.content FROM messages AS m JOIN rooms AS r ON r.room = m.room
         WHERE m.deleted = 0;
    """,
    # 11: reports of messages (chatzilla.moderation_store), each the JSON
    # action that made it, open until a moderator resolves it.
    """
    CREATE TABLE reports (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL,
        action TEXT NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX reports_open ON reports (room, seq) WHERE resolved = 0;
    """,
    # 12: replies: the id of the message of the room a message replies to
    # (0: none). What the reply shows of it is read with it, never stored
    # here: a deleted message's text stays gone.
    """
    ALTER TABLE messages ADD COLUMN reply_to INTEGER NOT NULL DEFAULT 0;
    """,
    # 13: invitation links to private rooms (chatzilla.moderation_store):
    # each the JSON action that made it, under the hash of its secret (id),
    # until it expires (removed as the room's next link is made) or is revoked.
    """
    CREATE TABLE invite_links (
        room TEXT NOT NULL,
        id TEXT NOT NULL,
        actor TEXT NOT NULL,
        until REAL NOT NULL,
        action TEXT NOT NULL,
        PRIMARY KEY (room, id)
    ) WITHOUT ROWID;
    """,
    # 14: each room's last activity, the time of its newest message, indexed:
    # the active rooms of a `rooms` frame are the first few rows of the index.
    """
    ALTER TABLE rooms ADD COLUMN last_ts REAL;
    UPDATE rooms SET last_ts = (
        SELECT m.ts FROM messages AS m WHERE m.room = rooms.room AND m.id = rooms.last_id
    );
    CREATE INDEX rooms_by_activity ON rooms (last_ts);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: A message's columns, in the order of :func:`_message`'s row.
_COLUMNS = "id, sender, content, ts, ref, rev, edited, deleted, reactions, reply_to"


def _message(row: tuple) -> Message:
    """A row of :data:`_COLUMNS` as a :class:`Message`."""
    message_id, sender, content, ts, ref, rev, edited, deleted, reactions, reply_to = row
    return Message(
        message_id, sender, content, ts, ref, rev, edited, bool(deleted), parse_reactions(reactions), reply_to
    )


#: A room's document ids start at its number times this (see migration 9).
ROOM_DOCS = 1 << 40


def fts_query(words: list[str]) -> str:
    """The FTS5 query for :func:`~chatzilla.protocol.search_words`'s words:
    each a quoted string (no operator of FTS5's can get in), the last a prefix."""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


#: Every query the backend runs on a room's messages, by name. Each must
#: cost the same however many messages the room holds: tests/test_query_plans.py
#: runs ``EXPLAIN QUERY PLAN`` on each over a seeded file, with and without
#: the planner's statistics, and refuses any scan of a room's messages.
QUERIES: dict[str, str] = {
    # A retried message, by its sender's ref. INDEXED BY: without statistics
    # the planner would rather walk the whole room backwards by primary key
    # (to serve ORDER BY) and test each row: a cost that grew with the room.
    "by_ref": "SELECT id, content, ts FROM messages INDEXED BY messages_by_ref "
    "WHERE room = ? AND sender = ? AND ref = ? AND ts >= ? ORDER BY id DESC LIMIT 1",
    "insert": "INSERT INTO messages (room, id, sender, content, ts, ref, reply_to) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    # The newest ``limit`` with after < id < before: a range of the primary key.
    "page": f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id > ? AND id < ? ORDER BY id DESC LIMIT ?",
    # Changes: one message, its new state, and the messages changed after a
    # change id, in their order (the partial index holds changed ones only).
    "get": f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id = ?",
    # Several by id (the originals replies quote): a JSON list of ids.
    "get_many": f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND id IN (SELECT value FROM json_each(?))",
    "change": "UPDATE messages SET content = ?, rev = ?, edited = ?, deleted = ?, reactions = ? "
    "WHERE room = ? AND id = ?",
    "changes": f"SELECT {_COLUMNS} FROM messages INDEXED BY messages_by_rev "
    "WHERE room = ? AND rev > 0 AND rev > ? ORDER BY rev LIMIT ?",
    "last_rev": "SELECT last_rev FROM rooms WHERE room = ?",
    # Search: a room's number, its documents (see migration 9), newest first.
    "room_no": "SELECT no FROM rooms WHERE room = ?",
    "next_room_no": "SELECT coalesce(max(no), 0) + 1 FROM rooms",
    "set_room_no": "INSERT INTO rooms (room, last_id, no) VALUES (?, 0, ?) "
    "ON CONFLICT (room) DO UPDATE SET no = excluded.no",
    "index": "INSERT INTO messages_fts (rowid, content) VALUES (?, ?)",
    "unindex": "DELETE FROM messages_fts WHERE rowid = ?",
    "unindex_range": "DELETE FROM messages_fts WHERE rowid >= ? AND rowid < ?",
    "search": "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? AND rowid >= ? AND rowid < ? "
    "ORDER BY rowid DESC LIMIT ?",
    "set_last_rev": "UPDATE rooms SET last_rev = ? WHERE room = ?",
    "last_id": "SELECT last_id FROM rooms WHERE room = ?",
    "bounds": "SELECT first_id, last_id FROM rooms WHERE room = ?",
    # Retention: the time of the first message from an id on (bisection),
    # and the removal of a range of ids, a batch at a time.
    "ts_from": "SELECT ts FROM messages WHERE room = ? AND id >= ? ORDER BY id LIMIT 1",
    "remove": "DELETE FROM messages WHERE room = ? AND id >= ? AND id < ?",
    "set_first_id": "UPDATE rooms SET first_id = ? WHERE room = ?",
    # One row per room (never a room's messages).
    "rooms": "SELECT room, first_id, last_id FROM rooms",
    # The rooms with the newest messages: the first rows of their index.
    "active": "SELECT room, last_ts FROM rooms WHERE last_ts IS NOT NULL ORDER BY last_ts DESC LIMIT ?",
    "set_last_ts": "UPDATE rooms SET last_ts = ? WHERE room = ?",
    "set_last_id": "INSERT INTO rooms (room, last_id) VALUES (?, ?) "
    "ON CONFLICT (room) DO UPDATE SET last_id = excluded.last_id",
}


#: The size the -wal file is cut back to whenever a checkpoint empties it, in
#: bytes. SQLite checkpoints every 1000 pages (4 MB) by itself, but it never
#: shrinks the file: a burst, or a long read holding a snapshot meanwhile,
#: would leave a WAL that large for good.
WAL_LIMIT = 8 * 1024 * 1024
#: A write that keeps failing (a full disk) is logged when it starts to fail,
#: then at most once this many seconds, and once when it works again.
FAILURE_LOG_EVERY = 60.0


def connect(path: str) -> sqlite3.Connection:
    """Open ``path`` with the pragmas every Chatzilla connection uses."""
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    # FULL: a commit is on disk before it returns, so an acknowledged message
    # survives a crash of the machine, not only of the process.
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA busy_timeout=5000")
    return con


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error, unless
    SQLite rolled it back itself (a full disk or an I/O error during the
    commit does): a ROLLBACK then would only raise "cannot rollback - no
    transaction is active" in place of the real cause."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def migrate(con: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version ``upto``; return the version found before.

    Raises :class:`StorageError` for a file written by a newer Chatzilla.
    """
    found = con.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StorageError(
            f"the database has schema version {found}, newer than this "
            f"Chatzilla's {SCHEMA_VERSION}: upgrade Chatzilla"
        )
    for version in range(found, upto):
        # Statement by statement, not executescript(), which would commit
        # half a migration on its own.
        with transaction(con):
            for statement in _statements(MIGRATIONS[version]):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {version + 1}")
    return found


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


@dataclasses.dataclass
class _Pending:
    room: str
    sender: str
    content: str
    ref: str | None
    origin: object
    future: asyncio.Future
    reply_to: int = 0
    quote: Quote | None = None


class SQLiteBackend(LocalPresence):
    """The embedded durable backend; see the module docstring. Presence is
    counted in this process (:class:`~chatzilla.backends.presence.LocalPresence`).

    Opening creates the file and its schema (or upgrades it) and raises
    :class:`StorageError` with a readable message if it cannot. ``max_pages``
    caps the file's size in pages (SQLite refuses writes past it exactly as
    on a full disk: SQLITE_FULL); None, the disk's size. While writes fail,
    :attr:`healthy` is False (``/healthz`` says degraded); every append tries
    again, and the first that succeeds ends it.
    """

    def __init__(
        self,
        path: str,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
        retention: Retention = KEEP_ALL,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(grace)
        self._path = path
        self._clock = clock
        self._retention = retention
        self._max_pages = max_pages
        # Failing writes: since when (clock time; None while they work), when
        # last logged, and how many batches failed since then.
        self._failing_since: float | None = None
        self._failure_logged = 0.0
        self._failures = 0
        self._pruning: asyncio.Task | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="chatzilla-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="chatzilla-reader")
        self._wcon: sqlite3.Connection | None = None
        self._rcon: sqlite3.Connection | None = None
        self._last_ids: dict[str, int] = {}  # writer thread only
        self._room_nos: dict[str, int] = {}  # writer thread only
        self._queue: list[_Pending] = []
        self._flushing: asyncio.Task | None = None
        self._closed = False
        self._returning: list[tuple[str, str]] = []  # present at the last shutdown
        #: Transactions committed, for the benchmark and the group-commit test.
        self.commits = 0
        try:
            # Start-up, before serving: waiting here blocks no handler.
            self._writer.submit(self._open_writer).result()
            self._reader.submit(self._open_reader).result()
        except (sqlite3.Error, OSError) as exc:
            self._shutdown_threads()
            raise StorageError(f"cannot open the database {path!r}: {exc}") from None
        except StorageError:
            self._shutdown_threads()
            raise

    # -- threads -----------------------------------------------------------

    def _open_writer(self) -> None:
        self._wcon = connect(self._path)
        if self._max_pages is not None:
            self._wcon.execute(f"PRAGMA max_page_count={int(self._max_pages)}")
        before = migrate(self._wcon)
        if before != SCHEMA_VERSION:
            log.info("database %s: schema version %d -> %d", self._path, before, SCHEMA_VERSION)
        with transaction(self._wcon) as con:
            self._returning = con.execute(
                "SELECT room, email FROM presence ORDER BY room, position"
            ).fetchall()
            con.execute("DELETE FROM presence")

    def _write_presence(self, people: list[tuple[str, str]]) -> None:
        """Writes who is present (on the writer thread), for the next start."""
        con = self._wcon
        assert con is not None
        positions: dict[str, int] = {}
        with transaction(con):
            con.execute("DELETE FROM presence")
            for room, email in people:
                positions[room] = positions.get(room, 0) + 1
                con.execute(
                    "INSERT INTO presence (room, position, email) VALUES (?, ?, ?)",
                    (room, positions[room], email),
                )

    def _open_reader(self) -> None:
        self._rcon = connect(self._path)

    def _write(self, batch: list[tuple[str, str, str, str | None, int]]) -> list[tuple[Message, bool]]:
        """One transaction for a batch of appends (runs on the writer thread)."""
        con = self._wcon
        assert con is not None
        results: list[tuple[Message, bool]] = []
        last_ids: dict[str, int] = {}
        last_ts: dict[str, float] = {}
        numbers: dict[str, int] = {}
        with transaction(con):
            for room, sender, content, ref, reply_to in batch:
                now = self._clock()
                if ref is not None:
                    row = con.execute(QUERIES["by_ref"], (room, sender, ref, now - DEDUP_WINDOW)).fetchone()
                    if row is not None:
                        results.append((Message(row[0], sender, row[1], row[2], ref), True))
                        continue
                message_id = last_ids.get(room) or self._last_id(con, room)
                message_id += 1
                last_ids[room] = message_id
                last_ts[room] = now
                con.execute(QUERIES["insert"], (room, message_id, sender, content, now, ref, reply_to))
                no = numbers.get(room) or self._room_no(con, room, numbers)
                con.execute(QUERIES["index"], (no * ROOM_DOCS + message_id, content))
                results.append((Message(message_id, sender, content, now, ref, reply_to=reply_to), False))
            for room, last_id in last_ids.items():
                con.execute(QUERIES["set_last_id"], (room, last_id))
                con.execute(QUERIES["set_last_ts"], (last_ts[room], room))
        # Only a committed id is remembered, so a failed batch reuses nothing.
        self._last_ids.update(last_ids)
        self._room_nos.update(numbers)
        self.commits += 1
        return results

    def _room_no(self, con: sqlite3.Connection, room: str, numbers: dict[str, int]) -> int:
        """The number of ``room`` (its search documents' range), given it
        now if it has none; a new one goes into ``numbers``, remembered once
        committed (writer thread)."""
        no = self._room_nos.get(room)
        if no is None:
            row = con.execute(QUERIES["room_no"], (room,)).fetchone()
            no = row[0] if row is not None else None
        if no is None:
            no = con.execute(QUERIES["next_room_no"]).fetchone()[0]
            con.execute(QUERIES["set_room_no"], (room, no))
        numbers[room] = no
        return no

    def _last_id(self, con: sqlite3.Connection, room: str) -> int:
        if room not in self._last_ids:
            row = con.execute(QUERIES["last_id"], (room,)).fetchone()
            self._last_ids[room] = row[0] if row else 0
        return self._last_ids[room]

    def _page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        con = self._rcon
        assert con is not None
        rows = con.execute(QUERIES["page"], (room, after or 0, before or 2**63 - 1, limit)).fetchall()
        return [_message(row) for row in reversed(rows)]

    def _search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        con = self._rcon
        assert con is not None
        row = con.execute(QUERIES["room_no"], (room,)).fetchone()
        if row is None or row[0] is None:
            return []  # no message yet
        base = row[0] * ROOM_DOCS
        # No id of the room reaches ROOM_DOCS: a larger `before` (a frame may
        # say up to 2^63 - 1) would run into the next rooms' documents, or
        # past SQLite's integers.
        upto = base + min(before if before is not None else ROOM_DOCS, ROOM_DOCS)
        documents = con.execute(QUERIES["search"], (fts_query(words), base, upto, limit)).fetchall()
        found = [self._get(room, document - base) for (document,) in documents]
        return [message for message in found if message is not None and not message.deleted]

    def _get(self, room: str, message_id: int) -> Message | None:
        assert self._rcon is not None
        row = self._rcon.execute(QUERIES["get"], (room, message_id)).fetchone()
        return None if row is None else _message(row)

    def _get_many(self, room: str, ids: list[int]) -> list[Message]:
        assert self._rcon is not None
        rows = self._rcon.execute(QUERIES["get_many"], (room, json.dumps(ids))).fetchall()
        return [_message(row) for row in rows]

    def _changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        con = self._rcon
        assert con is not None
        # The latest id first: changes listed past it are news all the same.
        row = con.execute(QUERIES["last_rev"], (room,)).fetchone()
        rows = con.execute(QUERIES["changes"], (room, after, limit)).fetchall() if limit > 0 else []
        return [_message(r) for r in rows], row[0] if row else 0

    def _change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        """One change in a transaction of its own (writer thread)."""
        con = self._wcon
        assert con is not None
        numbers: dict[str, int] = {}
        with transaction(con):
            row = con.execute(QUERIES["get"], (room, message_id)).fetchone()
            if row is None:
                return None, False
            message = _message(row)
            last_rev = con.execute(QUERIES["last_rev"], (room,)).fetchone()[0]
            try:
                after = changed(message, change, last_rev + 1, self._clock())
            except ValueError:
                return message, False
            if after is None:
                return message, False
            con.execute(
                QUERIES["change"],
                (
                    after.content,
                    after.rev,
                    after.edited,
                    int(after.deleted),
                    reactions_text(after) or None,
                    room,
                    message_id,
                ),
            )
            con.execute(QUERIES["set_last_rev"], (after.rev, room))
            if after.content != message.content:  # the search index follows the text
                document = self._room_no(con, room, numbers) * ROOM_DOCS + message_id
                con.execute(QUERIES["unindex"], (document,))
                if not after.deleted:
                    con.execute(QUERIES["index"], (document, after.content))
        self._room_nos.update(numbers)
        self.commits += 1
        return after, True

    # -- the Backend interface --------------------------------------------

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        # Whoever was here at the last shutdown is expected back.
        if self._grace > 0:
            for room, email in self._returning:
                self.linger(room, email, self._grace)
        if self._returning:
            log.info("%d people present at the last shutdown are expected back", len(self._returning))
        self._returning = []
        if not self._retention.keeps_all:
            self._pruning = asyncio.ensure_future(self._prune_loop())

    # -- retention -----------------------------------------------------------

    async def _prune_loop(self) -> None:
        while not self._closed:
            try:
                await self.prune()
            except (sqlite3.Error, OSError) as exc:
                log.error("could not remove old messages: %s", exc)
            await asyncio.sleep(PRUNE_EVERY)

    async def prune(self) -> int:
        """Remove what retention no longer keeps, in every room, a batch per
        transaction (appends go in between); returns how many were removed."""
        loop = asyncio.get_running_loop()
        removed = 0
        for room, first, last in await loop.run_in_executor(self._writer, self._rooms):
            keep = await loop.run_in_executor(self._writer, self._first_kept, room, first, last)
            while first < keep and not self._closed:
                upto = min(keep, first + PRUNE_BATCH)
                removed += await loop.run_in_executor(self._writer, self._remove, room, first, upto)
                first = upto
        if removed:
            log.info("removed %d messages past their retention", removed)
        return removed

    def _rooms(self) -> list[tuple[str, int, int]]:
        assert self._wcon is not None
        return self._wcon.execute(QUERIES["rooms"]).fetchall()

    def _first_kept(self, room: str, first: int, last: int) -> int:
        con = self._wcon
        assert con is not None

        def ts_at(message_id: int) -> float:
            row = con.execute(QUERIES["ts_from"], (room, message_id)).fetchone()
            return row[0] if row is not None else float("inf")

        return self._retention.first_kept(first, last, self._clock(), ts_at)

    def _remove(self, room: str, first: int, upto: int) -> int:
        """Removes ids ``first <= id < upto`` of ``room`` (writer thread)."""
        con = self._wcon
        assert con is not None
        with transaction(con):
            removed = con.execute(QUERIES["remove"], (room, first, upto)).rowcount
            con.execute(QUERIES["set_first_id"], (upto, room))
            row = con.execute(QUERIES["room_no"], (room,)).fetchone()
            if row is not None and row[0] is not None:
                con.execute(QUERIES["unindex_range"], (row[0] * ROOM_DOCS + first, row[0] * ROOM_DOCS + upto))
        return removed

    async def append(
        self,
        room: str,
        sender: str,
        content: str,
        ref: str | None,
        origin: object,
        reply_to: int = 0,
        quote: Quote | None = None,
    ) -> tuple[Message, bool]:
        if self._closed:
            raise StorageError("the database is closed")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(room, sender, content, ref, origin, future, reply_to, quote))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                rows = [(p.room, p.sender, p.content, p.ref, p.reply_to) for p in batch]
                try:
                    results = await loop.run_in_executor(self._writer, self._write, rows)
                except (sqlite3.Error, OSError) as exc:
                    self._write_failed(exc)
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(StorageError("the message could not be stored"))
                    continue
                self._write_worked()
                for pending, (message, duplicate) in zip(batch, results, strict=False):
                    if not duplicate:
                        quoted = dataclasses.replace(message, quote=pending.quote)
                        deliver_stored(self._deliver, pending.room, quoted, pending.origin)
                    if not pending.future.done():
                        pending.future.set_result((message, duplicate))
        finally:
            self._flushing = None

    @property
    def healthy(self) -> bool:
        return not self._closed and self._failing_since is None

    def _write_failed(self, exc: Exception) -> None:
        """Log a failed write: its cause when writes start to fail, then at
        most every FAILURE_LOG_EVERY seconds (a full disk fails every append:
        one line each would flood the log that the disk is too full for)."""
        now = self._clock()
        cause = f"{exc} ({getattr(exc, 'sqlite_errorname', type(exc).__name__)})"
        if self._failing_since is None:
            self._failing_since = self._failure_logged = now
            self._failures = 0
            log.error(
                "cannot store messages in %s: %s; refusing them until it works again", self._path, cause
            )
            return
        self._failures += 1
        if now - self._failure_logged >= FAILURE_LOG_EVERY:
            log.error(
                "still cannot store messages in %s: %s (%d more attempts failed in %.0f s)",
                self._path,
                cause,
                self._failures,
                now - self._failure_logged,
            )
            self._failure_logged = now
            self._failures = 0

    def _write_worked(self) -> None:
        if self._failing_since is not None:
            log.warning(
                "messages are stored in %s again, after %.0f s of failing",
                self._path,
                self._clock() - self._failing_since,
            )
            self._failing_since = None

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, self._page, room, after, before, limit)
        except sqlite3.Error as exc:
            log.error("could not read history of room %s: %s", room, exc)
            raise StorageError("history could not be read") from None

    async def get(self, room: str, message_id: int) -> Message | None:
        return await self._read(self._get, room, message_id)

    async def get_many(self, room: str, ids: list[int]) -> list[Message]:
        return await self._read(self._get_many, room, ids) if ids else []

    async def changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        return await self._read(self._changes, room, after, limit)

    async def search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        return await self._read(self._search, room, words, before, limit)

    async def _read(self, read: Callable, *args):
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader, read, *args)
        except sqlite3.Error as exc:
            log.error("could not read history of room %s: %s", args[0], exc)
            raise StorageError("history could not be read") from None

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        if self._closed:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        try:
            message, done = await loop.run_in_executor(self._writer, self._change, room, message_id, change)
        except (sqlite3.Error, OSError) as exc:
            self._write_failed(exc)
            raise StorageError("the change could not be stored") from None
        self._write_worked()
        if done and message is not None:
            deliver_stored(self._deliver, room, message, CHANGE)
        return message, done

    async def active(self, limit: int) -> list[tuple[str, float]]:
        try:
            rows = await asyncio.get_running_loop().run_in_executor(self._reader, self._active, limit)
        except sqlite3.Error as exc:
            log.error("could not read the active rooms: %s", exc)
            raise StorageError("the rooms could not be read") from None
        return [(room, ts) for room, ts in rows]

    def _active(self, limit: int) -> list[tuple[str, float]]:
        assert self._rcon is not None
        return self._rcon.execute(QUERIES["active"], (limit,)).fetchall()

    async def bounds(self, room: str) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        try:
            row = await loop.run_in_executor(self._reader, self._bounds, room)
        except sqlite3.Error as exc:
            log.error("could not read history of room %s: %s", room, exc)
            raise StorageError("history could not be read") from None
        return (row[0], row[1]) if row is not None else (1, 0)

    def _bounds(self, room: str) -> tuple[int, int] | None:
        assert self._rcon is not None
        return self._rcon.execute(QUERIES["bounds"], (room,)).fetchone()

    async def close(self) -> None:
        """Finish queued writes, write down who is present, then close both
        connections and threads."""
        if self._closed:
            return
        self._closed = True
        if self._pruning is not None:
            self._pruning.cancel()
            await asyncio.gather(self._pruning, return_exceptions=True)
        self._stop_presence()
        if self._flushing is not None:
            await self._flushing
        loop = asyncio.get_running_loop()
        present = self.participants()
        try:
            await loop.run_in_executor(self._writer, self._write_presence, present)
        except (sqlite3.Error, OSError) as exc:
            log.error("could not write down who is present: %s", exc)
        else:
            if present:
                log.info("%d present at shutdown, expected back after a restart", len(present))
        await loop.run_in_executor(self._writer, self._close_con, "_wcon")
        await loop.run_in_executor(self._reader, self._close_con, "_rcon")
        self._shutdown_threads()

    def _close_con(self, name: str) -> None:
        con = getattr(self, name)
        if con is not None:
            con.close()
            setattr(self, name, None)

    def _shutdown_threads(self) -> None:
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)
