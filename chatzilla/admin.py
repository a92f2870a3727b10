"""``python -m chatzilla admin``: the operator's tools.

Roles and sanctions (``grant``, ``revoke``, ``mute``, ``unmute``, ``ban``,
``unban``) and the audit log (``audit``) on every shared storage: the SQLite
file, Postgres or Redis. A change made here is kept and audited like a
moderator's, by "operator"; on Postgres and Redis the running servers hear
of it at once (a ban closes the person's connections). A server on a SQLite
file serves one process and hears nothing from here: it reads a person's
sanctions at each of their joins, so a ban or mute given here holds from
their next join, and a connection already in the room goes on until then
(moderate live from the page instead).

Rooms and people (``rooms``, ``people``), backups (``export`` as JSON lines,
of one room or everything; ``import`` of such a file) and deletion requests
(``forget ADDRESS``: their messages become "message deleted" markers from
nobody, their reactions come off every message, their sessions, bot tokens,
sign-in links, roles and sanctions go, and the audit log no longer names
them) on the SQL storages: the SQLite file and Postgres. An export of one imports into the other.
On Redis alone, ``rooms``, ``people``, ``export``, ``import`` and ``forget``
(:mod:`chatzilla.admin_redis`): a backup goes between Redis and either SQL storage.

Memory storage lives in the server process: nothing here reaches it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from . import moderation
from .accounts import Accounts, PostgresAccounts, RedisAccounts, SQLiteAccounts
from .admin_redis import RedisDeployment, RedisImport
from .admin_redis import forget as forget_redis
from .backends.base import StorageError
from .backends.sqlite import ROOM_DOCS
from .chat import parse_reactions
from .identity import Person
from .moderation import OWNER, Action, NotAllowed
from .moderation_store import ModerationStore, make_store
from .protocol import ProtocolError, check_room, normalize_email
from .settings import Settings, SettingsError, load

#: The first line of an export, and the version of its format.
EXPORT_KIND = "chatzilla-export"
EXPORT_VERSION = 1
#: The sender a forgotten person's messages are left with.
FORGOTTEN = json.dumps({"avatar": "", "id": "", "name": "deleted"}, separators=(",", ":"), sort_keys=True)

_PERSON_ID = re.compile(r"p[0-9a-f]{12}")


class AdminError(Exception):
    """What the operator is told, on one line; exit status 1."""


# -- the SQL storages ---------------------------------------------------------------


class Database:
    """The tables of a SQLite file or a Postgres database, with SQL written
    once: ``?`` placeholders (numbered for Postgres), run one at a time;
    :meth:`atomic` runs a function of several in one transaction."""

    postgres = False

    async def fetch(self, sql: str, *args: Any) -> list[tuple]:
        raise NotImplementedError

    async def atomic(self, work: Callable[[Database], Any]) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    """The chat's SQLite file, on a thread of its own (the loop never waits on disk)."""

    def __init__(self, path: str) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chatzilla-admin")
        self._path = path
        self._con: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            raise StorageError(f"{self._path}: {exc}") from None

    async def open(self) -> SQLiteDatabase:
        from .backends.sqlite import connect, migrate

        def open_() -> None:
            self._con = connect(self._path)
            migrate(self._con)

        await self._call(open_)
        return self

    async def fetch(self, sql: str, *args: Any) -> list[tuple]:
        con = self._con
        assert con is not None
        return await self._call(lambda: [tuple(row) for row in con.execute(sql, args).fetchall()])

    async def atomic(self, work: Callable[[Database], Any]) -> Any:
        await self.fetch("BEGIN IMMEDIATE")
        try:
            result = await work(self)
        except BaseException:
            await self.fetch("ROLLBACK")
            raise
        await self.fetch("COMMIT")
        return result

    async def close(self) -> None:
        if self._con is not None:
            await self._call(self._con.close)
            self._con = None
        self._thread.shutdown(wait=False)


class PostgresDatabase(Database):
    """A Postgres database, its schema brought up to date on opening."""

    postgres = True

    def __init__(self, url: str) -> None:
        from .backends.postgres import normalize_url

        self._url = normalize_url(url)
        self._con: Any = None

    async def open(self) -> PostgresDatabase:
        import asyncpg

        from .backends.postgres import ERRORS, migrate

        try:
            self._con = await asyncpg.connect(self._url, timeout=10.0)
            await migrate(self._con)
        except ERRORS as exc:
            raise StorageError(f"Postgres: {exc}") from None
        return self

    async def fetch(self, sql: str, *args: Any) -> list[tuple]:
        from .backends.postgres import ERRORS

        numbered = iter(range(1, len(args) + 1))
        sql = re.sub(r"\?", lambda _m: f"${next(numbered)}", sql)
        try:
            return [tuple(row) for row in await self._con.fetch(sql, *args)]
        except ERRORS as exc:
            raise StorageError(f"Postgres: {exc}") from None

    async def atomic(self, work: Callable[[Database], Any]) -> Any:
        async with self._con.transaction():
            return await work(self)

    async def close(self) -> None:
        if self._con is not None:
            await self._con.close()
            self._con = None


# -- export and import ------------------------------------------------------------

_MESSAGE_COLUMNS = (
    "room", "id", "sender", "content", "ts", "ref", "rev", "edited", "deleted", "reactions", "reply_to",
)  # fmt: skip
#: What an export holds, by kind: the table and its columns, in the order
#: they are written (rooms before their messages, people before their tokens).
_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "room": ("rooms", ("room", "last_id", "first_id", "last_rev")),
    "message": ("messages", _MESSAGE_COLUMNS),
    "person": ("people", ("id", "email", "name")),
    "token": ("bot_tokens", ("digest", "person", "label", "created")),
    "session": ("sessions", ("digest", "person", "expires")),
    "role": ("room_roles", ("room", "person", "role")),
    "sanction": ("sanctions", ("room", "person", "kind", "until", "reason", "actor", "ts")),
    "audit": ("audit_log", ("seq", "room", "action")),
    "rules": ("room_rules", ("room", "topic", "private", "read_only")),
    "invitation": ("invitations", ("room", "person")),
    "report": ("reports", ("seq", "room", "action", "resolved")),
    "link": ("invite_links", ("room", "id", "actor", "until", "action")),
}
#: A column written under another name: a sanction's kind is its "type"
#: (each line's "kind" is what the line holds).
_FIELD = {"kind": "type"}
#: A column's value when an export (of an earlier Chatzilla) has none.
_DEFAULTS = {"reply_to": 0}
#: Columns that are true or false (SQLite keeps 0 or 1).
_FLAGS = {"message": ("deleted",), "rules": ("private", "read_only"), "report": ("resolved",)}
#: Kinds kept per room (an export of one room holds these only).
_ROOM_KINDS = ("room", "message", "role", "sanction", "audit", "rules", "invitation", "report", "link")
_KEYS = {
    "rooms": ("room",),
    "messages": ("room", "id"),
    "people": ("id",),
    "bot_tokens": ("digest",),
    "sessions": ("digest",),
    "room_roles": ("room", "person"),
    "sanctions": ("room", "person", "kind"),
    "audit_log": ("seq",),
    "room_rules": ("room",),
    "invitations": ("room", "person"),
    "reports": ("seq",),
    "invite_links": ("room", "id"),
}


def _write(out: TextIO, kind: str, record: dict[str, Any]) -> None:
    out.write(json.dumps({"kind": kind, **record}, ensure_ascii=False) + "\n")


def _header(out: TextIO, room: str | None) -> None:
    out.write(json.dumps({"kind": EXPORT_KIND, "version": EXPORT_VERSION, "room": room}) + "\n")


async def export_redis(redis: RedisDeployment, out: TextIO, room: str | None = None) -> int:
    """:func:`export`, of a chat kept in Redis: the same lines, so it
    imports into a SQLite file or a Postgres database."""
    _header(out, room)
    written = 0
    async for kind, record in redis.records(room):
        _write(out, kind, record)
        written += 1
    return written


def _records(lines: TextIO) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind, record)`` of each line of an export; raises :class:`AdminError`
    for a file that is no export, or a line of a kind unknown."""
    header = json.loads(lines.readline() or "{}")
    if header.get("kind") != EXPORT_KIND or header.get("version") != EXPORT_VERSION:
        raise AdminError(f"not a Chatzilla export of version {EXPORT_VERSION}")
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        record = json.loads(line)
        kind = record.pop("kind", None)
        if kind not in _TABLES:
            raise AdminError(f"line {number}: unknown kind {kind!r}")
        yield kind, record


async def import_redis(redis: RedisDeployment, lines: TextIO) -> tuple[int, int]:
    """:func:`import_` into a chat kept in Redis (see
    :class:`~chatzilla.admin_redis.RedisImport`), a key at a time (Redis has
    no transaction to hold it all). Returns the rows read, and the messages
    left out (ids below a room's newest that it lacks)."""
    adding = RedisImport(redis)
    count = 0
    for kind, record in _records(lines):
        await adding.add(kind, record)
        count += 1
    return count, adding.left_out


async def export(db: Database, out: TextIO, room: str | None = None, batch: int = 1000) -> int:
    """Write ``room`` (None: everything) as JSON lines to ``out``: a header,
    then one object per row, with its ``kind``. Returns the rows written."""
    _header(out, room)
    written = 0
    for kind, (table, columns) in _TABLES.items():
        if room is not None and kind not in _ROOM_KINDS:
            continue
        keys = _KEYS[table]
        where, args = ("WHERE room = ?", [room]) if room is not None else ("", [])
        after: tuple | None = None
        while True:
            # Paged by key, so a room of millions is never held at once.
            page_where = where
            page_args = list(args)
            if after is not None:
                condition = f"({', '.join(keys)}) > ({', '.join('?' for _ in keys)})"
                page_where = f"{where} AND {condition}" if where else f"WHERE {condition}"
                page_args += list(after)
            rows = await db.fetch(
                f"SELECT {', '.join(columns)} FROM {table} {page_where} "
                f"ORDER BY {', '.join(keys)} LIMIT {batch}",
                *page_args,
            )
            for row in rows:
                record = {_FIELD.get(c, c): v for c, v in zip(columns, row, strict=True)}
                for flag in _FLAGS.get(kind, ()):
                    record[flag] = bool(record[flag])
                _write(out, kind, record)
            written += len(rows)
            if len(rows) < batch:
                break
            last = dict(zip(columns, rows[-1], strict=True))
            after = tuple(last[k] for k in keys)
    return written


async def import_(db: Database, lines: TextIO) -> int:
    """Add an export's rows (see :func:`export`) to ``db``, in one
    transaction: rows it has already (by key) stay as they are; each room's
    last ids become the larger of both. Returns the rows read. Raises
    :class:`AdminError` for a file that is no export."""

    async def work(db: Database) -> int:
        count = 0
        rooms: set[str] = set()
        for kind, record in _records(lines):
            table, columns = _TABLES[kind]
            values = [record.get(_FIELD.get(c, c), _DEFAULTS.get(c)) for c in columns]
            for flag in _FLAGS.get(kind, ()) if not db.postgres else ():
                values[columns.index(flag)] = int(bool(record.get(flag)))
            names = ", ".join(columns)
            marks = ", ".join("?" for _ in columns)
            if "room" in record:
                rooms.add(record["room"])
            if kind == "room":
                # Ids are never reused: the larger last id of both stays.
                await db.fetch(
                    f"INSERT INTO rooms ({names}) VALUES ({marks}) ON CONFLICT (room) DO UPDATE SET "
                    "last_id = max_(rooms.last_id, excluded.last_id), "
                    "last_rev = max_(rooms.last_rev, excluded.last_rev)".replace(
                        "max_", "GREATEST" if db.postgres else "MAX"
                    ),
                    *values,
                )
            else:
                await db.fetch(
                    f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", *values
                )
            count += 1
        if not db.postgres:
            await _reindex(db, rooms)
        if db.postgres:
            # Audit entries and reports came with their numbers: the next ones follow them.
            for table in ("audit_log", "reports"):
                await db.fetch(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
                    f"(SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), false)"
                )
        return count

    return await db.atomic(work)


#: A SQLite room's search documents are ids ``no * ROOM_SPAN + id`` (see
#: the SQLite backend's migration 10).
ROOM_SPAN = 1 << 40


async def _reindex(db: Database, rooms: set[str]) -> None:
    """SQLite: give each room its number if it has none, and index its
    messages for search again (Postgres derives its index by itself)."""
    for room in sorted(rooms):
        rows = await db.fetch("SELECT no FROM rooms WHERE room = ?", room)
        if not rows:
            continue  # a room with roles or rules but no message
        no = rows[0][0]
        if no is None:
            [(no,)] = await db.fetch("SELECT coalesce(max(no), 0) + 1 FROM rooms")
            await db.fetch("UPDATE rooms SET no = ? WHERE room = ?", no, room)
        await db.fetch(
            "DELETE FROM messages_fts WHERE rowid >= ? AND rowid < ?", no * ROOM_SPAN, (no + 1) * ROOM_SPAN
        )
        await db.fetch(
            "INSERT INTO messages_fts (rowid, content) SELECT ? + id, content FROM messages "
            "WHERE room = ? AND deleted = 0",
            no * ROOM_SPAN,
            room,
        )


# -- a deletion request -----------------------------------------------------------


async def forget(db: Database, email: str) -> dict[str, int]:
    """Remove everything about the person of ``email`` (see the module's
    docstring), in one transaction; returns what was removed, by kind. Their
    messages keep their ids and places: each becomes deleted, from nobody,
    with a new change id (``rev``), so pages catching up by change see it go."""

    async def work(db: Database) -> dict[str, int]:
        rows = await db.fetch("SELECT id FROM people WHERE email = ?", email)
        person = rows[0][0] if rows else None
        # Their messages: under sign-in, a sender key naming their id; from
        # an --auth open time, their address itself. (A scan of every
        # message: a rare request, not a query of the chat.)
        senders = [email]
        if person is not None:
            found = await db.fetch(
                "SELECT DISTINCT sender FROM messages WHERE sender LIKE ?", f'%"id":"{person}"%'
            )
            senders += [s for (s,) in found if _key_id(s) == person]
        removed = {"messages": 0}
        for sender in senders:
            messages = await db.fetch(
                "SELECT room, id FROM messages WHERE sender = ? ORDER BY room, id", sender
            )
            for room, message_id in messages:
                [(rev, no)] = await db.fetch(
                    "UPDATE rooms SET last_rev = last_rev + 1 WHERE room = ? RETURNING last_rev, "
                    + ("NULL" if db.postgres else "no"),
                    room,
                )
                if no is not None:
                    # SQLite: out of the search index (Postgres's follows the text).
                    await db.fetch("DELETE FROM messages_fts WHERE rowid = ?", no * ROOM_SPAN + message_id)
                await db.fetch(
                    "UPDATE messages SET sender = ?, content = '', deleted = ?, reactions = NULL, rev = ? "
                    "WHERE room = ? AND id = ?",
                    FORGOTTEN,
                    True if db.postgres else 1,
                    rev,
                    room,
                    message_id,
                )
                if not db.postgres:
                    # SQLite's search index keeps the text apart (schema 9):
                    # out of it too. (Postgres's words follow the content.)
                    await db.fetch(
                        "DELETE FROM messages_fts"
                        " WHERE rowid = (SELECT no FROM rooms WHERE room = ?) * ? + ?",
                        room,
                        ROOM_DOCS,
                        message_id,
                    )
            removed["messages"] += len(messages)
        removed["reactions"] = await _unreact(db, email, person)
        removed["links"] = len(await db.fetch("DELETE FROM signin_links WHERE email = ? RETURNING 1", email))
        if person is not None:
            for table in ("sessions", "bot_tokens"):
                removed[table] = len(
                    await db.fetch(f"DELETE FROM {table} WHERE person = ? RETURNING 1", person)
                )
            # A sanction they gave stands, given by nobody now.
            await db.fetch("UPDATE sanctions SET actor = '' WHERE actor = ?", person)
            for table in ("room_roles", "sanctions", "invitations"):
                removed[table] = len(
                    await db.fetch(f"DELETE FROM {table} WHERE person = ? RETURNING 1", person)
                )
            removed["invitation links"] = len(
                await db.fetch("DELETE FROM invite_links WHERE actor = ? RETURNING 1", person)
            )
            removed["audit entries redacted"] = await _redact_audit(db, person)
            removed["people"] = len(await db.fetch("DELETE FROM people WHERE id = ? RETURNING 1", person))
        return removed

    return await db.atomic(work)


async def _unreact(db: Database, email: str, person: str | None) -> int:
    """Take the person's reactions off every message (each a change, with
    a new change id); returns how many were taken off."""
    # A reaction names its giver by key: their address (--auth open) or
    # their person key, which holds their id.
    mine = {email} if person is None else {email, person}
    taken = 0
    for needle in mine:
        found = await db.fetch(
            "SELECT room, id, reactions FROM messages WHERE reactions LIKE ? ORDER BY room, id", f"%{needle}%"
        )
        for room, message_id, text in found:
            kept, here = [], 0
            for emoji, people in parse_reactions(text):
                others = [p for p in people if p != email and _key_id(p) != person]
                here += len(people) - len(others)
                if others:
                    kept.append([emoji, others])
            if not here:
                continue  # the needle was only part of someone else's name
            taken += here
            [(rev,)] = await db.fetch(
                "UPDATE rooms SET last_rev = last_rev + 1 WHERE room = ? RETURNING last_rev", room
            )
            await db.fetch(
                "UPDATE messages SET reactions = ?, rev = ? WHERE room = ? AND id = ?",
                json.dumps(kept, ensure_ascii=False) if kept else None,
                rev,
                room,
                message_id,
            )
    return taken


def _key_id(key: str) -> str | None:
    try:
        value = json.loads(key)
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None


async def _redact_audit(db: Database, person: str) -> int:
    """The audit log (and reports) keep what was done, no longer to whom or by whom."""
    return await _redact(db, "audit_log", person) + await _redact(db, "reports", person)


async def _redact(db: Database, table: str, person: str) -> int:
    rows = await db.fetch(f"SELECT seq, action FROM {table} WHERE action LIKE ?", f"%{person}%")
    count = 0
    for seq, text in rows:
        changed = moderation.redacted(text, person)
        if changed is not None:
            await db.fetch(f"UPDATE {table} SET action = ? WHERE seq = ?", changed, seq)
            count += 1
    return count


# -- the command line -----------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m chatzilla admin",
        description="The operator's tools. Storage settings as for serving (flags or environment).",
    )
    for flag in ("--storage", "--db", "--database-url", "--redis-url", "--redis-prefix", "--admins"):
        top.add_argument(flag, metavar="VALUE", help="as for serving")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("rooms", help="every room: messages kept, last id, roles and sanctions")
    commands.add_parser("people", help="everyone who signed in: id, name, address")
    audit = commands.add_parser("audit", help="the audit log, newest last")
    audit.add_argument("room", nargs="?")
    audit.add_argument("--limit", type=int, default=100)
    for name in ("grant", "revoke"):
        command = commands.add_parser(name, help=f"{name} a room role (moderator or owner)")
        command.add_argument("room")
        command.add_argument("person", help="an address or a public id")
        if name == "grant":
            command.add_argument("role", choices=moderation.ROOM_ROLES)
    rules = commands.add_parser("rules", help="a room's topic, and whether it is private or read-only")
    rules.add_argument("room")
    rules.add_argument("--topic")
    rules.add_argument("--private", choices=("yes", "no"))
    rules.add_argument("--read-only", choices=("yes", "no"))
    for name in ("invite", "uninvite"):
        command = commands.add_parser(name, help=f"{name} a person to a private room")
        command.add_argument("room")
        command.add_argument("person", help="an address or a public id")
    for name in ("mute", "ban", "unmute", "unban"):
        command = commands.add_parser(name, help=f"{name} a person in a room")
        command.add_argument("room")
        command.add_argument("person", help="an address or a public id")
        if name in ("mute", "ban"):
            command.add_argument("--minutes", type=int, help="how long (none: until lifted)")
        command.add_argument("--reason", default="")
    out = commands.add_parser("export", help="write everything (or --room) as JSON lines")
    out.add_argument("--room")
    out.add_argument("--output", "-o", default="-", help="a file (default: standard output)")
    into = commands.add_parser("import", help="add an export's rows")
    into.add_argument("file", help="the export (- : standard input)")
    gone = commands.add_parser("forget", help="delete everything about an address (a deletion request)")
    gone.add_argument("email")
    return top


def _settings(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    argv: list[str] = []
    for name in ("storage", "db", "database_url", "redis_url", "redis_prefix", "admins"):
        value = getattr(args, name)
        if value is not None:
            argv += ["--" + name.replace("_", "-"), value]
    return load(argv, environ)


def _accounts(settings: Settings) -> Accounts:
    if settings.database_url:
        return PostgresAccounts(settings.database_url)
    if settings.redis_url:
        return RedisAccounts(settings.redis_url, settings.redis_prefix)
    return SQLiteAccounts(settings.db)


async def _database(settings: Settings) -> Database:
    if settings.database_url:
        return await PostgresDatabase(settings.database_url).open()
    return await SQLiteDatabase(settings.db).open()


async def _on_redis(
    args: argparse.Namespace, settings: Settings, say: Callable[[str], None], out: TextIO
) -> None:
    """rooms, people, export and import of a chat kept in Redis alone (messages too)."""
    redis = RedisDeployment(settings.redis_url or "", settings.redis_prefix)
    try:
        if args.command == "forget":
            await _forget_with(args, say, lambda email: forget_redis(redis, email))
        elif args.command == "import":
            if args.file == "-":
                count, left_out = await import_redis(redis, sys.stdin)
            else:
                with open(args.file, encoding="utf-8") as file:
                    count, left_out = await import_redis(redis, file)
            say(f"imported {count} rows")
            if left_out:
                print(
                    f"left out {left_out} messages below their rooms' newest (a stream grows at its end)",
                    file=sys.stderr,
                )
        elif args.command == "rooms":
            for name, first, last, roles, sanctions in await redis.rooms():
                say(f"{name}\tmessages {first}-{last}\troles {roles}\tsanctions {sanctions}")
        elif args.command == "people":
            for person_id, name, email in await redis.people():
                say(f"{person_id}\t{name}\t{email}")
        else:
            await _export_to(args, out, lambda file, room: export_redis(redis, file, room))
    finally:
        await redis.close()


async def _forget_with(
    args: argparse.Namespace,
    say: Callable[[str], None],
    forget_one: Callable[[str], Awaitable[dict[str, int]]],
) -> None:
    """``forget``: ``forget_one(email)``, what it removed said on one line."""
    try:
        email = normalize_email(args.email)
    except ProtocolError as exc:
        raise AdminError(f"{args.email!r}: {exc.reason}") from None
    removed = await forget_one(email)
    say("forgot " + email + ": " + ", ".join(f"{n} {what}" for what, n in removed.items()))


async def _export_to(
    args: argparse.Namespace, out: TextIO, export_one: Callable[[TextIO, str | None], Awaitable[int]]
) -> None:
    """``export``: ``export_one(file, room)`` into ``--output`` (or ``out``), the count to standard error."""
    room = None if args.room is None else check_room(args.room)
    if args.output == "-":
        count = await export_one(out, room)
    else:
        with open(args.output, "w", encoding="utf-8") as file:
            count = await export_one(file, room)
    print(f"exported {count} rows", file=sys.stderr)


async def _person(accounts: Accounts, text: str) -> Person:
    if _PERSON_ID.fullmatch(text):
        person = await accounts.person_by_id(text)
    else:
        try:
            person = await accounts.person_by_email(normalize_email(text))
        except ProtocolError as exc:
            raise AdminError(f"{text!r}: {exc.reason}") from None
    if person is None:
        raise AdminError(f"nobody with {text!r} ever signed in")
    return person


async def _rules(args: argparse.Namespace, settings: Settings, say: Callable[[str], None]) -> None:
    """rules: change the fields given, as an admin would."""
    try:
        room = check_room(args.room)
    except ProtocolError as exc:
        raise AdminError(exc.reason) from None
    flag = {"yes": True, "no": False, None: None}
    if room == "lobby" and flag[args.private]:
        raise AdminError("the lobby is for everyone: it cannot be private")
    store = make_store(settings)
    try:
        try:
            rules = (await store.rules(room)).changed(args.topic, flag[args.private], flag[args.read_only])
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        await store.apply(Action("rules", room, "", "", time.time(), rules=rules.frame()))
        say(f"rules of {room}: " + json.dumps(rules.frame(), ensure_ascii=False))
    finally:
        await store.close()


async def _moderate(args: argparse.Namespace, settings: Settings, say: Callable[[str], None]) -> None:
    """grant, revoke, mute, unmute, ban, unban: as an admin would, by "operator"."""
    try:
        room = check_room(args.room)
    except ProtocolError as exc:
        raise AdminError(exc.reason) from None
    accounts = _accounts(settings)
    store = make_store(settings)
    try:
        target = await _person(accounts, args.person)
        now = time.time()
        role = getattr(args, "role", None)
        if args.command == "revoke":
            role = (await store.roles(room)).get(target.id)
            if role is None:
                raise AdminError(f"{target.name} has no role in {room}")
        if role == OWNER and room == "lobby":
            raise AdminError("the lobby has no owner: admins look after it")
        try:
            reason = moderation.check_reason(getattr(args, "reason", ""))
            until = moderation.until_of(args.minutes, now) if args.command in ("mute", "ban") else None
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        if args.command in ("mute", "ban") and target.email in settings.admins:
            raise NotAllowed("an admin's role comes from the server's settings")
        action = Action(
            args.command, room, target.id, "", now, reason=reason, until=until, role=role,
            target_public=target.public(),
        )  # fmt: skip
        await store.apply(action)
        say(f"{args.command}: {target.name} ({target.id}) in {room}" + (f" as {role}" if role else ""))
    finally:
        await store.close()
        await accounts.close()


async def _run(args: argparse.Namespace, settings: Settings, say: Callable[[str], None], out: TextIO) -> None:
    if args.command == "rules":
        await _rules(args, settings, say)
        return
    if args.command in ("grant", "revoke", "mute", "unmute", "ban", "unban", "invite", "uninvite"):
        await _moderate(args, settings, say)
        return
    if args.command == "audit":
        store: ModerationStore = make_store(settings)
        try:
            for action in await store.audit(args.room, args.limit):
                say(_audit_line(action))
        finally:
            await store.close()
        return
    if settings.redis_url and not settings.database_url:
        await _on_redis(args, settings, say, out)
        return
    db = await _database(settings)
    try:
        if args.command == "rooms":
            rows = await db.fetch("SELECT room, first_id, last_id FROM rooms ORDER BY room")
            roles = await db.fetch("SELECT room, COUNT(*) FROM room_roles GROUP BY room")
            sanctions = await db.fetch("SELECT room, COUNT(*) FROM sanctions GROUP BY room")
            role_count, sanction_count = dict(roles), dict(sanctions)
            for room, first, last in rows:
                say(
                    f"{room}\tmessages {first}-{last}\troles {role_count.get(room, 0)}"
                    f"\tsanctions {sanction_count.get(room, 0)}"
                )
        elif args.command == "people":
            for person_id, name, email in await db.fetch(
                "SELECT id, name, email FROM people ORDER BY name, id"
            ):
                say(f"{person_id}\t{name}\t{email}")
        elif args.command == "export":
            await _export_to(args, out, lambda file, room: export(db, file, room))
        elif args.command == "import":
            if args.file == "-":
                count = await import_(db, sys.stdin)
            else:
                with open(args.file, encoding="utf-8") as file:
                    count = await import_(db, file)
            say(f"imported {count} rows")
        elif args.command == "forget":
            await _forget_with(args, say, lambda email: forget(db, email))
    finally:
        await db.close()


def _audit_line(action: Action) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(action.ts))
    by = action.actor_public.get("name", "?")
    whom = action.target_public.get("name", "?")
    extra = []
    if action.role:
        extra.append(action.role)
    if action.until is not None:
        extra.append("until " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(action.until)))
    if action.message is not None:
        extra.append(f"message {action.message}")
    if action.reason:
        extra.append(f"reason: {action.reason}")
    return (
        f"{when} UTC\t{action.room}\t{by} ({action.actor})\t{action.kind}\t{whom} ({action.target})\t"
        + "; ".join(extra)
    )


def main(argv: Sequence[str], environ: dict[str, str]) -> int:
    """Run one admin command; 0 when done, 1 when refused, 2 for bad settings."""
    args = parser().parse_args(list(argv))
    try:
        settings = _settings(args, environ)
    except SettingsError as exc:
        print(f"chatzilla admin: {exc}", file=sys.stderr)
        return 2
    if settings.storage == "memory" and not (settings.database_url or settings.redis_url):
        print(
            "chatzilla admin: memory storage lives in the server process; nothing to administer",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(_run(args, settings, print, sys.stdout))
    except (AdminError, StorageError) as exc:
        print(f"chatzilla admin: {exc}", file=sys.stderr)
        return 1
    except NotAllowed as exc:
        print(f"chatzilla admin: {exc.reason}", file=sys.stderr)
        return 1
    except ProtocolError as exc:
        print(f"chatzilla admin: {exc.reason}", file=sys.stderr)
        return 1
    return 0
