"""Durable history in Postgres, shared by every process that uses the same
database: rooms, ids, presence and fan-out with nothing else (LISTEN/NOTIFY).
:class:`PostgresStore` is the messages part, which
:class:`~chatzilla.backends.postgres_redis.PostgresRedisBackend` shares;
:class:`PostgresBackend` adds LISTEN and presence in tables.

Messages: appends that arrive together go to Postgres as one call of
``chatzilla_append`` (one statement: one round trip, one transaction, one
commit; see :mod:`.postgres_schema`), which numbers each message with its
room's next id and notifies ``chatzilla_messages`` with "ROOM ID TOKEN" (the
token names the append in the process that made it). A message
is acknowledged once that commit returned. Every process listens on a
connection of its own; for each room it has people in it reads the new
messages (``id >`` the last one it delivered) and delivers them in id order,
its own senders' acknowledgements included, so everyone sees one order. Its
own appends need no read: the reader delivers them from what the append
returned when they come next in order.

Presence: tables of nodes (each process, with a heartbeat), their
connections, and who is present in each room in order of arrival; each
change is one function call that notifies ``chatzilla_presence``. A person
whose last connection closes stays present until the end of the grace period
(``away_until``); every process, every second, lets those whose period is
over leave and forgets the connections of nodes not seen for
:data:`NODE_TTL` seconds (a process that was killed), whose people then have
their grace period.

Postgres down or restarting: appends and reads raise
:class:`~chatzilla.backends.base.StorageError` (the hub answers
``unavailable``) when nothing was stored, and an append whose batch may have
committed before the connection broke is looked up by its ``ref``, else is
:class:`~chatzilla.backends.base.OutcomeUnknown`; :attr:`healthy`
turns False, and the listener reconnects, reads what it missed, and the
heartbeat registers this process's people again if another process forgot
them meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import time
from collections.abc import Callable

import asyncpg

from ..chat import (
    Change,
    Message,
    PresenceChange,
    Quote,
    changed,
    originals_missing,
    parse_reactions,
    reactions_text,
    with_quotes,
)
from ..privacy import who
from .base import CHANGE, DEDUP_WINDOW, Announce, Deliver, OutcomeUnknown, StorageError, deliver_stored
from .networked import NetworkedBackend
from .postgres_schema import (
    CHANGES_CHANNEL,
    MESSAGES_CHANNEL,
    MIGRATION_LOCK,
    MIGRATIONS,
    PRESENCE_CHANNEL,
    SCHEMA_VERSION,
)
from .retention import KEEP_ALL, PRUNE_BATCH, PRUNE_EVERY, Retention

log = logging.getLogger("chatzilla.postgres")

#: What a lost or refusing Postgres raises. asyncpg 0.32 raises
#: InternalClientError ("cannot switch to state 12; another operation (2) is
#: in progress") for a statement whose preparation Postgres answered just
#: before ending the connection, both read at once: the statement never ran.
ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)

#: How long :meth:`PostgresBackend.append` waits, once its message is
#: committed, for this process's reader to deliver it (as for Redis).
DELIVERY_WAIT = 5.0
#: How often a process proves it is alive, and how long before it counts as dead.
HEARTBEAT = 1.0
NODE_TTL = 5.0
#: Seconds the sender of an append whose outcome was unknown is kept, to
#: acknowledge the message if it turns up stored after all.
UNKNOWN_KEPT = 60.0
#: Seconds a statement may take before it counts as failed.
COMMAND_TIMEOUT = 5.0
#: Messages read at once per room by the reader.
READ_BATCH = 1000
#: A message's columns, in the order of :class:`Message`'s fields.
COLUMNS = "id, sender, content, ts, ref, rev, edited, deleted, reactions, reply_to"
#: Times a change is tried when the message keeps changing under it.
CHANGE_TRIES = 10


def _message(row: asyncpg.Record) -> Message:
    """A row of :data:`COLUMNS` as a :class:`Message`."""
    message_id, sender, content, ts, ref, rev, edited, deleted, reactions, reply_to = row
    return Message(
        message_id, sender, content, ts, ref, rev, edited, deleted, parse_reactions(reactions), reply_to
    )


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` name the same thing; asyncpg
    takes both, libpq-style tools the second."""
    return "postgresql://" + url.removeprefix("postgres://") if url.startswith("postgres://") else url


async def connect(url: str, timeout: float = 5.0) -> asyncpg.Connection:
    return await asyncpg.connect(normalize_url(url), timeout=timeout, command_timeout=COMMAND_TIMEOUT)


class Pool(asyncpg.Pool):
    """asyncpg's pool, taking back a connection that Postgres ended as it
    answered without failing the query that it answered.

    asyncpg 0.32's :meth:`asyncpg.Pool.release` gives a connection back in
    a task of its own (``asyncio.shield``), which starts a loop turn later.
    When Postgres ends the connection right after its answer (a restart, a
    ``pg_terminate_backend``) and both arrive in one read (a busy process
    reads late), the connection's own clean-up runs in that turn and puts
    its holder back in the pool first; the release then finds the holder
    free, or resets the ended connection, and raises ``InternalClientError``
    ("release() called on a free connection holder", "another operation
    (2) is in progress") out of a query that succeeded: the heartbeat died
    of it during a restart. Such a release has nothing left to do. Any
    other ``InternalClientError`` is raised as before.
    """

    __slots__ = ()

    async def release(self, connection, *, timeout=None):
        try:
            return await super().release(connection, timeout=timeout)
        except asyncpg.InternalClientError:
            # The proxy was detached: given back by its connection's close.
            if connection._con is not None:
                raise
            return None


async def create_pool(url: str, max_size: int) -> Pool:
    """A :class:`Pool` of at most ``max_size`` connections to ``url``,
    none kept open while idle (the backend, accounts and moderation each
    have one)."""
    pool = Pool(
        normalize_url(url),
        min_size=0,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=COMMAND_TIMEOUT,
        timeout=5.0,
    )
    await pool
    return pool


async def migrate(con: asyncpg.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the schema to version ``upto``; return the version found before.

    Raises :class:`StorageError` for a database of a newer Chatzilla."""
    await con.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)")
        found = await con.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"the database has schema version {found}, newer than this "
                f"Chatzilla's {SCHEMA_VERSION}: upgrade Chatzilla"
            )
        for version in range(found, upto):
            async with con.transaction():
                await con.execute(MIGRATIONS[version])
                await con.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version + 1)
        return found
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def migrate_url(url: str) -> tuple[int, int]:
    """Migrate the database at ``url``: (version before, version after).
    Raises :class:`StorageError` with a readable message."""
    try:
        con = await connect(url)
    except (*ERRORS, ValueError) as exc:
        raise StorageError(f"cannot reach the database: {exc}") from None
    try:
        before = await migrate(con)
    except ERRORS as exc:
        raise StorageError(f"cannot migrate the database: {exc}") from None
    finally:
        await con.close()
    return before, SCHEMA_VERSION


class _Sent(ConnectionError):
    """The connection broke, or the statement timed out, after it was sent:
    it may have committed."""


@dataclasses.dataclass
class _Pending:
    room: str
    sender: str
    content: str
    ref: str | None
    token: str
    future: asyncio.Future
    reply_to: int = 0
    quote: Quote | None = None


class PostgresStore(NetworkedBackend):
    """Messages in the Postgres at ``url``, for the backends that keep them
    there: appends grouped into transactions, history, retention, and a
    reader that delivers each followed room's messages in id order. What
    tells the reader of new messages (and presence) is the subclass's:
    LISTEN/NOTIFY (:class:`PostgresBackend`) or Redis
    (:class:`~chatzilla.backends.postgres_redis.PostgresRedisBackend`).
    Call :meth:`open` (it migrates the schema) before :meth:`start`.

    ``node`` names this process (unique by default); ``grace`` is the
    presence grace period in seconds; ``clock`` gives messages their time.
    """

    service = "Postgres"

    def __init__(
        self,
        url: str,
        *,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
        retention: Retention = KEEP_ALL,
    ) -> None:
        super().__init__(node, grace)
        self._url = normalize_url(url)
        self._retention = retention
        self._clock = clock
        self._pool: Pool | None = None
        self._queue: list[_Pending] = []
        self._flushing: asyncio.Task | None = None
        self._last_read: dict[str, int] = {}  # room -> last id delivered here
        self._newest: dict[str, int] = {}  # room -> newest id known to exist
        # Likewise for changes: room -> last change id delivered here, newest known.
        self._last_rev: dict[str, int] = {}
        self._newest_rev: dict[str, int] = {}
        # This process's appends: token -> (room, sending connection, set
        # once the reader delivered it); the token goes into the message's
        # notification, so the reader can tell its own messages whichever
        # comes first, the notification or the append's answer.
        self._tokens = itertools.count(1)
        self._origins: dict[str, tuple[str, object, asyncio.Future[None]]] = {}
        self._token_of: dict[tuple[str, int], str] = {}  # (room, id) -> token
        # Messages in hand, from an append's answer or a notification that
        # carried them: delivered in turn with no read.
        self._ready: dict[tuple[str, int], Message] = {}
        # The batch being written: its time and its appends (see _claim).
        self._writing: tuple[float, list[_Pending]] = (0.0, [])
        self._wake = asyncio.Event()
        #: Transactions of appends committed, for the benchmark and the group-commit test.
        self.commits = 0

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate the schema, and start hearing of new messages.
        Raises :class:`StorageError`."""
        try:
            con = await connect(self._url)
        except (*ERRORS, ValueError) as exc:
            raise StorageError(f"cannot reach the database: {exc}") from None
        try:
            before = await migrate(con)
        except ERRORS as exc:
            await con.close()
            raise StorageError(f"cannot migrate the database: {exc}") from None
        except StorageError:
            await con.close()
            raise
        if before != SCHEMA_VERSION:
            log.info("database: schema version %d -> %d", before, SCHEMA_VERSION)
        await con.close()
        try:
            self._pool = await create_pool(self._url, max_size=8)
            await self._open_notifications()
        except ERRORS as exc:
            raise StorageError(f"cannot reach the database: {exc}") from None
        self._healthy = True

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        self._spawn(self._read_loop())
        if not self._retention.keeps_all:
            self._spawn(self._prune_loop())

    async def close(self) -> None:
        """Finish queued writes and pending leaves, say goodbye
        (:meth:`_goodbye`: this process's people get their grace period),
        and disconnect."""
        if self._closed:
            return
        if self._flushing is not None:
            await asyncio.wait([self._flushing], timeout=COMMAND_TIMEOUT)
        await self._finish_leaves()
        self._closed = True
        self._stop_waiting()
        await self._stop_tasks()
        if self._pool is not None:
            with contextlib.suppress(*ERRORS):
                await asyncio.wait_for(self._goodbye(), 2.0)
            try:
                await asyncio.wait_for(self._pool.close(), 2.0)
            except ERRORS:
                self._pool.terminate()
        await self._close_notifications()

    # What the subclass does to hear of new messages.

    async def _open_notifications(self) -> None:
        """Start hearing of new messages (as :meth:`open` ends)."""

    async def _reopen_notifications(self) -> bool:
        """Called by the reader before each turn: True when notifications
        were lost and are heard again (then every followed room is read
        from where it was)."""
        return False

    async def _close_notifications(self) -> None:
        """Stop hearing of new messages (as :meth:`close` ends)."""

    async def _goodbye(self) -> None:
        """On a clean stop, with the pool still open: the subclass's last words."""

    def _committed(self, room: str, message: Message, token: str) -> None:
        """``message`` (this process's append ``token``) was just committed."""

    # -- messages --------------------------------------------------------------

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
        if self._closed or self._pool is None:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        token = f"{self.node}#{next(self._tokens)}"
        delivered = loop.create_future()
        self._origins[token] = (room, origin, delivered)
        answer = loop.create_future()
        self._queue.append(_Pending(room, sender, content, ref, token, answer, reply_to, quote))
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush())
        message, duplicate = await answer
        if not duplicate:
            # Delivered (and acknowledged to `origin`) by the reader, in the
            # room's order: wait for it, as the Backend contract says.
            await asyncio.wait([delivered], timeout=DELIVERY_WAIT)
        return message, duplicate

    async def _flush(self) -> None:
        """Append what is queued, a batch a transaction, until nothing is."""
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                self._writing = (self._clock(), batch)
                try:
                    rows = await self._write(batch, self._writing[0])
                except ERRORS as exc:
                    self._writing = (0.0, [])
                    self._failed("append", exc)
                    await self._settle_failed(batch, exc)
                    continue
                self._writing = (0.0, [])
                self._healthy = True
                self.commits += 1
                for pending, row in zip(batch, rows, strict=True):
                    try:
                        self._settle(pending, row)
                    except Exception as exc:  # a bug must not leave the sender waiting
                        log.exception("could not settle message %s of room %s", row["id"], pending.room)
                        if not pending.future.done():
                            pending.future.set_exception(exc)
        finally:
            self._flushing = None

    async def _write(self, batch: list[_Pending], ts: float) -> list[asyncpg.Record]:
        """Store ``batch`` at time ``ts``: one statement. Raises one of :data:`ERRORS`, or
        :class:`_Sent` when the statement was sent and may have committed."""
        assert self._pool is not None
        async with self._pool.acquire(timeout=COMMAND_TIMEOUT) as con:
            try:
                return await con.fetch(
                    "SELECT * FROM chatzilla_append($1, $2, $3, $4, $5, $6, $7, $8)",
                    [p.room for p in batch],
                    [p.sender for p in batch],
                    [p.content for p in batch],
                    [p.ref for p in batch],
                    [p.token for p in batch],
                    ts,
                    DEDUP_WINDOW,
                    [p.reply_to for p in batch],
                )
            except asyncpg.PostgresError:
                raise  # refused by Postgres: rolled back
            except ERRORS as exc:
                raise _Sent(str(exc) or type(exc).__name__) from exc

    def _settle(self, pending: _Pending, row: asyncpg.Record) -> None:
        """The append of ``pending`` is committed as ``row``: give it its
        turn in the room's order (the reader delivers it) and answer it."""
        message = Message(
            row["id"],
            pending.sender,
            row["content"],
            row["ts"],
            pending.ref,
            reply_to=pending.reply_to,
            quote=pending.quote,
        )
        waiting = self._origins.get(pending.token)
        if waiting is None:
            pass  # the reader delivered it already (its notification came first)
        elif row["duplicate"]:
            del self._origins[pending.token]
            waiting[2].set_result(None)
        elif pending.room in self._last_read:
            if message.id > self._last_read[pending.room]:
                self._token_of[(pending.room, message.id)] = pending.token
                self._ready[(pending.room, message.id)] = message
                self._known(pending.room, message.id)
            else:
                # Read past already without its token (it was notified
                # before the room was followed here): delivered, not waited for.
                del self._origins[pending.token]
                waiting[2].set_result(None)
        else:
            # Nobody here reads the room (the sender left meanwhile).
            del self._origins[pending.token]
            deliver_stored(self._deliver, pending.room, message, waiting[1])
            waiting[2].set_result(None)
        if not row["duplicate"]:
            self._committed(pending.room, message, pending.token)
        if not pending.future.done():
            pending.future.set_result((message, bool(row["duplicate"])))

    async def _settle_failed(self, batch: list[_Pending], exc: BaseException) -> None:
        """The batch's statement failed. Postgres refused it (an error it
        reported: rolled back) or no connection could be had: nothing was
        stored, ``unavailable``. The connection broke or timed out once the
        statement was sent: it may have committed. Then an append with a
        ``ref`` is looked up (briefly): found, it was stored and is
        acknowledged as a retry is; otherwise its outcome is unknown
        (:class:`OutcomeUnknown`: the client retries with the same ``ref``),
        and its token stays :data:`UNKNOWN_KEPT` seconds, so that if it
        turns up stored the reader delivers it as its sender's ``sent``."""
        log.error("could not store %d messages: %s", len(batch), exc)
        unknown = isinstance(exc, _Sent)
        for pending in batch:
            row = None
            if unknown and pending.ref is not None:
                with contextlib.suppress(*ERRORS):
                    row = await asyncio.wait_for(self._find_ref(pending), 2.0)
            if row is not None:
                self._settle(pending, row)
                continue
            if unknown:
                asyncio.get_running_loop().call_later(UNKNOWN_KEPT, self._forget, pending.token)
                error: StorageError = OutcomeUnknown("the message may or may not have been stored")
            else:
                self._forget(pending.token)
                error = StorageError("the message could not be stored")
            if not pending.future.done():
                pending.future.set_exception(error)

    def _forget(self, token: str) -> None:
        waiting = self._origins.pop(token, None)
        if waiting is not None and not waiting[2].done():
            waiting[2].set_result(None)

    async def _find_ref(self, pending: _Pending) -> asyncpg.Record | None:
        assert self._pool is not None
        return await self._pool.fetchrow(
            "SELECT id, content, ts, true AS duplicate FROM messages"
            " WHERE room = $1 AND sender = $2 AND ref = $3 AND ts >= $4 ORDER BY id DESC LIMIT 1",
            pending.room,
            pending.sender,
            pending.ref,
            self._clock() - DEDUP_WINDOW,
        )

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id > $2 AND id < $3"
                " ORDER BY id DESC LIMIT $4",
                room,
                after or 0,
                before or 2**63 - 1,
                limit,
            )
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        self._healthy = True
        return [_message(row) for row in reversed(rows)]

    async def get(self, room: str, message_id: int) -> Message | None:
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            row = await self._pool.fetchrow(
                f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id = $2", room, message_id
            )
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        return None if row is None else _message(row)

    async def get_many(self, room: str, ids: list[int]) -> list[Message]:
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            return await self._by_ids(room, ids)
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None

    async def _by_ids(self, room: str, ids: list[int]) -> list[Message]:
        """The messages of ``room`` with these ids, in any order. Raises one of :data:`ERRORS`."""
        if not ids:
            return []
        assert self._pool is not None
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id = ANY($2::bigint[])", room, ids
        )
        return [_message(row) for row in rows]

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        if self._closed or self._pool is None:
            raise StorageError("the database is closed")
        # The new state is computed here (chat.changed, every backend's
        # rule) and set only if the message did not change meanwhile.
        try:
            for _ in range(CHANGE_TRIES):
                row = await self._pool.fetchrow(
                    f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id = $2", room, message_id
                )
                if row is None:
                    return None, False
                message = _message(row)
                try:
                    after = changed(message, change, message.rev + 1, self._clock())
                except ValueError:
                    return message, False
                if after is None:
                    return message, False
                status, rev = await self._pool.fetchrow(
                    "SELECT * FROM chatzilla_set_message($1, $2, $3, $4, $5, $6, $7)",
                    room,
                    message_id,
                    message.rev,
                    after.content,
                    after.edited,
                    after.deleted,
                    reactions_text(after) or None,
                )
                if status == 0:
                    return None, False
                if status == 1:
                    # Delivered here (and in every process) by the reader, on its notification.
                    self._healthy = True
                    return dataclasses.replace(after, rev=rev), True
        except ERRORS as exc:
            self._failed("change", exc)
            raise StorageError("the change could not be stored") from None
        raise StorageError("the message kept changing; try again")

    async def search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        if self._pool is None:
            raise StorageError("the database is closed")
        # Words are letters, digits and _ only (protocol.search_words): no
        # operator of tsquery's can get in. The last one is a prefix.
        query = " & ".join(words) + ":*"
        try:
            async with self._pool.acquire(timeout=COMMAND_TIMEOUT) as con, con.transaction():
                # A plan for these words: the index for rare ones, the room's
                # newest messages for common ones. A prepared statement's
                # generic plan (Postgres's choice after 5 runs) walked the
                # whole room for an absent word: 116 ms p50 against 4.
                await con.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                rows = await con.fetch(
                    f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id < $2 AND NOT deleted"
                    " AND words @@ to_tsquery('simple', $3) ORDER BY id DESC LIMIT $4",
                    room,
                    before or 2**63 - 1,
                    query,
                    limit,
                )
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("the search could not be done") from None
        return [_message(row) for row in rows]

    async def changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            last = await self._pool.fetchval("SELECT last_rev FROM rooms WHERE room = $1", room)
            rows = await self._changed_after(room, after, limit) if limit > 0 else []
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        return [_message(row) for row in rows], last or 0

    async def _changed_after(self, room: str, after: int, limit: int) -> list[asyncpg.Record]:
        assert self._pool is not None
        return await self._pool.fetch(
            f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND rev > 0 AND rev > $2 ORDER BY rev LIMIT $3",
            room,
            after,
            limit,
        )

    async def bounds(self, room: str) -> tuple[int, int]:
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            row = await self._pool.fetchrow("SELECT first_id, last_id FROM rooms WHERE room = $1", room)
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        return (row["first_id"], row["last_id"]) if row is not None else (1, 0)

    async def active(self, limit: int) -> list[tuple[str, float]]:
        if self._pool is None:
            raise StorageError("the database is closed")
        try:
            rows = await self._pool.fetch(
                "SELECT room, last_ts FROM rooms WHERE last_ts IS NOT NULL ORDER BY last_ts DESC LIMIT $1",
                limit,
            )
        except ERRORS as exc:
            self._failed("history", exc)
            raise StorageError("the rooms could not be read") from None
        return [(row["room"], row["last_ts"]) for row in rows]

    # -- retention -------------------------------------------------------------

    async def _prune_loop(self) -> None:
        """Apply retention at start and every :data:`PRUNE_EVERY` seconds
        (every process does; a second pass finds nothing left to remove)."""
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                self._failed("retention", exc)
            await asyncio.sleep(PRUNE_EVERY)

    async def prune(self) -> None:
        """Remove what retention no longer keeps, in every room, at most
        :data:`PRUNE_BATCH` messages a transaction; ``first_id`` says where
        each room's kept messages now start."""
        assert self._pool is not None
        removed = 0
        for room, first, last in await self._pool.fetch("SELECT room, first_id, last_id FROM rooms"):
            keep = await self._first_kept(room, first, last)
            while first < keep and not self._closed:
                upto = min(keep, first + PRUNE_BATCH)
                async with self._pool.acquire() as con, con.transaction():
                    status = await con.execute(
                        "DELETE FROM messages WHERE room = $1 AND id >= $2 AND id < $3", room, first, upto
                    )
                    await con.execute(
                        "UPDATE rooms SET first_id = greatest(first_id, $2) WHERE room = $1", room, upto
                    )
                removed += int(status.split()[-1])
                first = upto
        if removed:
            log.info("removed %d messages past their retention", removed)

    async def _first_kept(self, room: str, first: int, last: int) -> int:
        """The lowest id ``room`` keeps now (the rule of
        :class:`~chatzilla.backends.retention.Retention`): the newest
        ``messages``, and of those the ones not older than ``days``, found
        by walking the room's ids up from the count's cut to the first young
        enough (the old ones it passes are the ones to remove)."""
        assert self._pool is not None
        keep = max(first, last - self._retention.messages + 1) if self._retention.messages else first
        if self._retention.days and keep <= last:
            cutoff = self._clock() - self._retention.days * 86400.0
            young = await self._pool.fetchval(
                "SELECT id FROM messages WHERE room = $1 AND id >= $2 AND ts >= $3 ORDER BY id LIMIT 1",
                room,
                keep,
                cutoff,
            )
            keep = last + 1 if young is None else young
        return keep

    # -- the reader ------------------------------------------------------------

    def _known(self, room: str, message_id: int) -> None:
        """Message ``message_id`` of ``room`` is committed: read up to it."""
        if room in self._last_read and message_id > self._newest.get(room, 0):
            self._newest[room] = message_id
            self._wake.set()

    def _follow_from(self, room: str, last_id: int) -> None:
        """Deliver ``room``'s messages after ``last_id`` (if not followed yet)."""
        self._last_read.setdefault(room, last_id)

    def _unfollow(self, room: str) -> None:
        """Stop reading ``room``: nobody here is in it."""
        self._last_read.pop(room, None)
        self._newest.pop(room, None)
        self._last_rev.pop(room, None)
        self._newest_rev.pop(room, None)
        self._stop_waiting(room)

    def _notified(self, room: str, message_id: int, token: str, message: Message | None = None) -> None:
        """Message ``message_id`` of ``room`` (appended as ``token``, with its
        content if the notification carried it) was committed."""
        if room not in self._last_read:
            return
        key = (room, message_id)
        if token in self._origins:
            self._token_of[key] = token
        if message is not None and message_id > self._last_read[room]:
            self._ready[key] = message
        self._known(room, message_id)

    def _changed(self, room: str, rev: int) -> None:
        """Change ``rev`` of ``room`` was committed: read up to it."""
        if room in self._last_rev and rev > self._newest_rev.get(room, 0):
            self._newest_rev[room] = rev
            self._wake.set()

    async def _follow_changes(self, room: str) -> None:
        """Deliver ``room``'s changes after its latest now (if not followed yet)."""
        if room in self._last_rev:
            return
        assert self._pool is not None
        last_rev = None
        with contextlib.suppress(*ERRORS):
            last_rev = await self._pool.fetchval("SELECT last_rev FROM rooms WHERE room = $1", room)
        # Unknown (Postgres failed just now): changes are read from
        # the first, which only repeats ones the pages know.
        self._last_rev[room] = last_rev or 0

    def _read_everything(self) -> None:
        """Notifications may have been lost: read every followed room up to its end."""
        for room in self._last_read:
            self._newest[room] = 2**63 - 1
        for room in self._last_rev:
            self._newest_rev[room] = 2**63 - 1
        self._wake.set()

    async def _read_loop(self) -> None:
        """Deliver each followed room's new messages in id order; keep the
        notifications coming (after they were lost, read every followed room
        from where it was: what was notified meanwhile is not lost)."""
        backoff = 0.1
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if await self._reopen_notifications():
                    self._read_everything()
                for room in list(self._last_read):
                    await self._catch_up(room)
                for room in list(self._last_rev):
                    await self._catch_up_changes(room)
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                self._failed("read", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._wake.set()
                continue
            backoff = 0.1

    async def _catch_up(self, room: str) -> None:
        """Deliver ``room``'s messages after the last delivered, up to the
        newest known: this process's own from their answers, the rest read
        (only up to the newest known: every token of those is known)."""
        while room in self._last_read and self._last_read[room] < self._newest.get(room, 0):
            last = self._last_read[room]
            ready = self._ready.pop((room, last + 1), None)
            if ready is not None:
                self._deliver_in_turn(room, ready)
                continue
            assert self._pool is not None
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM messages WHERE room = $1 AND id > $2 AND id <= $3"
                " ORDER BY id LIMIT $4",
                room,
                last,
                self._newest[room],
                READ_BATCH,
            )
            if self._last_read.get(room) != last:
                return  # the room was left (and maybe joined again) meanwhile
            if not rows:
                self._newest[room] = last
                return
            messages = await self._quoted(room, [_message(row) for row in rows])
            if self._last_read.get(room) != last:
                return
            for message in messages:
                if message.id > self._last_read.get(room, 2**63):
                    self._ready.pop((room, message.id), None)
                    self._deliver_in_turn(room, message)

    async def _quoted(self, room: str, messages: list[Message]) -> list[Message]:
        """``messages`` (another process's, read here) with what each reply
        among them quotes of its original, read in one query, as the
        sender's process delivered it with (see :func:`~chatzilla.chat.quote_of`)."""
        return with_quotes(messages, await self._by_ids(room, originals_missing(messages)))

    async def _catch_up_changes(self, room: str) -> None:
        """Deliver ``room``'s changes after the last delivered, in their order."""
        while room in self._last_rev and self._last_rev[room] < self._newest_rev.get(room, 0):
            last = self._last_rev[room]
            rows = await self._changed_after(room, last, READ_BATCH)
            if self._last_rev.get(room) != last:
                return  # the room was left (and maybe joined again) meanwhile
            if not rows:
                self._newest_rev[room] = last
                return
            for row in rows:
                self._last_rev[room] = row["rev"]
                deliver_stored(self._deliver, room, _message(row), CHANGE)

    def _deliver_in_turn(self, room: str, message: Message) -> None:
        """Deliver ``message``, the next of ``room``, with its origin if it
        is one of this process's appends."""
        self._last_read[room] = message.id
        token = self._token_of.pop((room, message.id), None) or self._claim(room, message)
        _, origin, delivered = self._origins.pop(token, (room, None, None)) if token else (room, None, None)
        deliver_stored(self._deliver, room, message, origin)
        if delivered is not None and not delivered.done():
            delivered.set_result(None)

    def _claim(self, room: str, message: Message) -> str | None:
        """The token of ``message`` if it is an append of the batch being
        written: read before the write's answer came back (a message
        committed after it, by another process, was heard of first), it is
        known by its batch's time and its fields (the first of equal ones
        not delivered yet: they were numbered in that order)."""
        ts, batch = self._writing
        if message.ts != ts:
            return None
        fields = (room, message.sender, message.content, message.ref)
        for pending in batch:
            if (
                pending.token in self._origins
                and (pending.room, pending.sender, pending.content, pending.ref) == fields
            ):
                return pending.token
        return None

    def _stop_waiting(self, room: str | None = None) -> None:
        """Let the appends waiting for delivery in ``room`` (every room: None)
        return: nobody in this process reads it any more."""
        for token, (in_room, _, delivered) in list(self._origins.items()):
            if room is None or in_room == room:
                del self._origins[token]
                if not delivered.done():
                    delivered.set_result(None)
        for key in [k for k in (*self._token_of, *self._ready) if room is None or k[0] == room]:
            self._token_of.pop(key, None)
            self._ready.pop(key, None)


class PostgresBackend(PostgresStore):
    """A :class:`~chatzilla.backends.base.Backend` in the Postgres at ``url``
    alone (see the module docstring): :class:`PostgresStore`, hearing of new
    messages and presence changes by LISTEN, and presence in tables."""

    def __init__(
        self,
        url: str,
        *,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
        heartbeat: float = HEARTBEAT,
        node_ttl: float = NODE_TTL,
        retention: Retention = KEEP_ALL,
    ) -> None:
        super().__init__(url, node=node, clock=clock, grace=grace, retention=retention)
        self._heartbeat = heartbeat
        self._node_ttl = node_ttl
        self._listener: asyncpg.Connection | None = None
        self._presence_lock = asyncio.Lock()
        # (room, e-mail) whose last connection here closed within a grace
        # period: on a clean stop, their grace starts again when it ends.
        self._parked: set[tuple[str, str]] = set()

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        self._spawn(self._heartbeat_loop())

    @property
    def healthy(self) -> bool:
        return self._healthy and self._listener is not None and not self._closed

    # -- notifications ---------------------------------------------------------

    async def _open_notifications(self) -> None:
        con = await connect(self._url)
        await con.add_listener(MESSAGES_CHANNEL, self._on_message)
        await con.add_listener(PRESENCE_CHANNEL, self._on_presence)
        await con.add_listener(CHANGES_CHANNEL, self._on_change)
        con.add_termination_listener(self._on_lost)
        self._listener = con

    async def _reopen_notifications(self) -> bool:
        if self._listener is not None:
            return False
        await self._open_notifications()
        log.info("Postgres listening again")
        self._healthy = True
        return True

    async def _close_notifications(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), 1.0)
            except ERRORS:
                listener.terminate()

    def _on_message(self, con, pid, channel, payload: str) -> None:
        """A message was committed: "ROOM ID TOKEN"."""
        try:
            room, message_id, token = payload.rsplit(" ", 2)
            number = int(message_id)
        except ValueError:
            log.error("skipped a malformed message notification")
            return
        self._notified(room, number, token)

    def _on_change(self, con, pid, channel, payload: str) -> None:
        """A change was committed: "ROOM REV"."""
        try:
            room, rev_text = payload.rsplit(" ", 1)
            rev = int(rev_text)
        except ValueError:
            log.error("skipped a malformed change notification")
            return
        self._changed(room, rev)

    def _on_lost(self, con) -> None:
        if con is self._listener and not self._closed:
            self._listener = None
            self._failed("listen", ConnectionError("the listening connection was lost"))
            self._wake.set()

    async def _goodbye(self) -> None:
        """A clean stop: this process's people (those whose connections it
        closed on the way out too) stay present for a grace period from
        now, not from when their connection closed, so pages that come
        back to another process, or to this one restarted, were never away."""
        assert self._pool is not None
        if self._parked:
            rooms, emails = zip(*self._parked, strict=True)
            await self._pool.execute(
                "UPDATE present AS p SET away_until = greatest(p.away_until, chatzilla_now() + $3)"
                " FROM unnest($1::text[], $2::text[]) AS gone (room, email)"
                " WHERE p.room = gone.room AND p.email = gone.email AND p.away_until IS NOT NULL",
                list(rooms),
                list(emails),
                self._grace,
            )
        await self._pool.fetchval("SELECT chatzilla_reap($1, $2, $3)", 1e9, self._grace, self.node)

    # -- presence --------------------------------------------------------------

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        if self._pool is None:
            raise StorageError("the database is closed")
        async with self._presence_lock:
            try:
                row = await self._pool.fetchrow(
                    "SELECT * FROM chatzilla_enter($1, $2, $3, 1)", room, email, self.node
                )
            except ERRORS as exc:
                self._failed("join", exc)
                raise StorageError("presence could not be recorded") from None
            self._count_in(room, email)
            # Read from the last message at the time of this arrival on.
            self._follow_from(room, row["last_id"])
            await self._follow_changes(room)
        self._healthy = True
        participants = list(row["participants"])
        if row["first"] == 1 and self._announce is not None:
            self._announce(room, PresenceChange("join", email, len(participants), row["version"]), key)
        elif row["first"] == 2:
            log.info("back %s (room %s, within the grace period)", who(email, log), room)
        return participants, row["version"]

    def _left(self, room: str, email: str, key: object, at_once: bool) -> None:
        self._spawn_leave(self._leave_now(room, email, key, at_once or self._grace <= 0))

    async def _leave_now(self, room: str, email: str, key: object, at_once: bool) -> None:
        assert self._pool is not None
        try:
            async with self._presence_lock:
                row = await self._pool.fetchrow(
                    "SELECT * FROM chatzilla_leave($1, $2, $3, $4)",
                    room,
                    email,
                    self.node,
                    None if at_once else self._grace,
                )
        except ERRORS as exc:
            # Forgotten here; the heartbeat's re-registration, or the reaping
            # of this node, sets Postgres right.
            self._failed("leave", exc)
            return
        if row["left_room"] and self._announce is not None:
            self._announce(room, PresenceChange("leave", email, row["count"], row["version"]), key)
        if row["away"]:
            self._parked.add((room, email))
            self._spawn(self._expire_after(self._grace, (room, email)))

    async def _expire_after(self, seconds: float, parked: tuple[str, str]) -> None:
        await asyncio.sleep(seconds)
        self._parked.discard(parked)
        with contextlib.suppress(*ERRORS):
            await self._expire()

    async def _expire(self) -> None:
        """Announce the leaves of everyone whose grace period is over."""
        assert self._pool is not None
        for row in await self._pool.fetch("SELECT * FROM chatzilla_expire($1)", self.node):
            if row["room"] in self._local and self._announce is not None:
                change = PresenceChange("leave", row["email"], row["count"], row["version"])
                self._announce(row["room"], change, None)

    def _on_presence(self, con, pid, channel, payload: str) -> None:
        """Another process's presence change: announce it to the people here."""
        try:
            event = json.loads(payload)
            if event["node"] == self.node or event["room"] not in self._local:
                return
            change = PresenceChange(
                event["event"], event["email"], int(event["count"]), int(event["version"])
            )
        except (ValueError, KeyError, TypeError):
            log.error("skipped a malformed presence notification")
            return
        if self._announce is not None:
            self._announce(event["room"], change, None)

    async def _heartbeat_loop(self) -> None:
        """Every ``heartbeat`` seconds: prove this process alive (registering
        its people again if another process reaped it, e.g. over a Postgres
        restart), forget dead processes' connections, and end grace periods."""
        assert self._pool is not None
        while True:
            try:
                async with self._presence_lock:
                    seen = await self._pool.execute(
                        "UPDATE nodes SET seen = chatzilla_now() WHERE node = $1", self.node
                    )
                    if seen == "UPDATE 0" and self._local:
                        await self._register_again()
                await self._pool.fetchval(
                    "SELECT chatzilla_reap($1, $2, NULL)", self._node_ttl, max(self._grace, 0.0)
                )
                await self._expire()
                self._healthy = self._listener is not None
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                self._failed("heartbeat", exc)
            except Exception as exc:  # a bug: /healthz says so, and the heartbeat goes on
                self._bug("heartbeat", exc)
            await asyncio.sleep(self._heartbeat)

    async def _register_again(self) -> None:
        assert self._pool is not None
        log.warning("this process's presence was forgotten; registering %d rooms again", len(self._local))
        # A copy: a leave may change the counts between the calls.
        for room, email, n in [(r, e, n) for r, people in self._local.items() for e, n in people.items()]:
            await self._pool.fetchrow(
                "SELECT * FROM chatzilla_enter($1, $2, $3, $4)", room, email, self.node, n
            )
