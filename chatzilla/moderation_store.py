"""Where moderation is kept: room roles, mutes and bans, the audit log.

Four stores, one per kind of backend, beside the messages and the accounts:
:class:`MemoryModeration` (lost on restart), :class:`SQLiteModeration` (the
chat's SQLite file, tables of schema version 7), :class:`RedisModeration`
(keys under the deployment's prefix) and :class:`PostgresModeration`
(tables of schema version 5). Every change is one :class:`~chatzilla.moderation.Action`,
kept with its audit entry in one transaction, and told to the other
processes that share the store (Redis: a pub/sub channel; Postgres: NOTIFY
on :data:`CHANNEL`, sent when the change commits). The embedded stores serve
one process: nobody else to tell. Each method raises
:class:`~chatzilla.backends.base.StorageError` when the store cannot answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .backends.base import StorageError
from .moderation import BAN, LIFTS, MAX_OPEN_REPORTS, MUTE, OWNER, Action, Rules, Sanction, TooManyReports
from .redis_side import RedisSide
from .settings import Settings
from .sqlite_side import SQLiteSide

log = logging.getLogger("chatzilla.moderation")

#: Postgres NOTIFY channel of moderation actions (Redis: PREFIX:moderation).
CHANNEL = "chatzilla_moderation"

#: ``listener(action)``: a change made by another process; ``listener(None)``:
#: changes may have been missed (the store's connection was lost and is back).
Listener = Callable[[Action | None], None]


class ModerationStore(Protocol):
    """What moderation needs kept."""

    async def roles(self, room: str) -> dict[str, str]:
        """The room's owner and moderators: person id -> role."""

    async def sanctions(self, room: str, person: str) -> list[Sanction]:
        """The person's mute and ban in the room as kept, expired or not."""

    async def rules(self, room: str) -> Rules:
        """The room's rules (the defaults when none were set)."""

    async def invited(self, room: str, person: str) -> bool:
        """Whether the person is invited to the room."""

    async def apply(self, action: Action) -> None:
        """Carry out a grant, revoke, mute, unmute, ban, unban, rules,
        invite, uninvite, link (keeping an invitation link, and forgetting
        the room's expired ones) or unlink (a delete is only audited), write it in
        the audit log and tell the other processes, all or nothing. Lifting
        what is not there, or revoking a role nobody has, changes nothing
        but is audited all the same."""

    async def report(self, action: Action) -> tuple[Action, bool]:
        """Keep a report (``action``, a "report") open, audited and told;
        returns it with its number, ``report``, and True. While the same
        person's report of the same message (``actor``, ``message``) is
        open, nothing changes: returns that one and False. Raises
        :class:`~chatzilla.moderation.TooManyReports` when the person has
        :data:`~chatzilla.moderation.MAX_OPEN_REPORTS` others open there."""

    async def reports(self, room: str, limit: int) -> list[Action]:
        """The room's oldest ``limit`` open reports, oldest first."""

    async def link(self, room: str, link: str) -> Action | None:
        """The "link" action that made the room's invitation link of id
        ``link`` (expired or not), or None (never made, or revoked)."""

    async def links(self, room: str) -> list[Action]:
        """The room's invitation links as kept ("link" actions, expired or not), oldest first."""

    async def claim(self, action: Action) -> bool:
        """Make ``action.target`` the owner of ``action.room`` if it has
        none (a "claim"); True when it did (audited and told)."""

    async def audit(self, room: str | None, limit: int) -> list[Action]:
        """The newest ``limit`` actions (of ``room``, or every room), oldest first."""

    async def rooms(self) -> list[str]:
        """Every room with a role or a sanction kept."""

    def listen(self, listener: Listener) -> asyncio.Future[None]:
        """Hear the other processes' actions from now on (a task of the running
        loop). The future it returns is done once they are heard: an action
        told before then is not (a join waits for it, see
        :meth:`~chatzilla.moderating.Moderation.admit`). Once listening,
        ``listener(None)`` says that actions may have been missed (the first
        time, and after each lost connection): read again what matters."""

    async def close(self) -> None:
        """Release what the store holds; safe to call twice."""


def _expired(link: Action, now: float) -> bool:
    return link.until is not None and link.until <= now


def _changes(action: Action) -> tuple[str, str | None]:
    """What ``action`` does to the kept state: ("role", role or None to
    remove), ("sanction", kind to set), ("lift", kind to remove) or
    ("none", None): a delete is the messages' change, only audited here."""
    if action.kind in ("delete", "rules", "invite", "uninvite", "resolve", "link", "unlink"):
        return action.kind, None
    if action.kind == "grant":
        return "role", action.role
    if action.kind == "revoke":
        return "role", None
    if action.kind in (MUTE, BAN):
        return "sanction", action.kind
    return "lift", LIFTS[action.kind]


class MemoryModeration:
    """Everything in this process's memory, for ``--storage memory``."""

    def __init__(self) -> None:
        self._roles: dict[str, dict[str, str]] = {}
        self._sanctions: dict[tuple[str, str, str], Sanction] = {}
        self._log: list[Action] = []
        self._rules: dict[str, Rules] = {}
        self._invited: set[tuple[str, str]] = set()
        self._reports: dict[int, Action] = {}  # open ones
        self._open: dict[tuple[str, str, int | None], int] = {}  # (room, reporter, message) -> open report
        self._links: dict[tuple[str, str], Action] = {}  # (room, id)

    async def report(self, action: Action) -> tuple[Action, bool]:
        key = (action.room, action.actor, action.message)
        if key in self._open:
            return self._reports[self._open[key]], False
        if sum(1 for room, actor, _ in self._open if (room, actor) == key[:2]) >= MAX_OPEN_REPORTS:
            raise TooManyReports()
        action = dataclasses.replace(action, report=len(self._log) + 1)
        self._reports[action.report or 0] = action
        self._open[key] = action.report or 0
        self._log.append(action)
        return action, True

    async def reports(self, room: str, limit: int) -> list[Action]:
        return [a for a in self._reports.values() if a.room == room][:limit]

    async def roles(self, room: str) -> dict[str, str]:
        return dict(self._roles.get(room, {}))

    async def link(self, room: str, link: str) -> Action | None:
        return self._links.get((room, link))

    async def links(self, room: str) -> list[Action]:
        return [a for (r, _), a in self._links.items() if r == room]

    async def rules(self, room: str) -> Rules:
        return self._rules.get(room, Rules())

    async def invited(self, room: str, person: str) -> bool:
        return (room, person) in self._invited

    async def sanctions(self, room: str, person: str) -> list[Sanction]:
        return [s for kind in (MUTE, BAN) if (s := self._sanctions.get((room, person, kind))) is not None]

    async def apply(self, action: Action) -> None:
        what, value = _changes(action)
        roles = self._roles.setdefault(action.room, {})
        if what == "role":
            if value == OWNER:
                for person in [p for p, r in roles.items() if r == OWNER]:
                    del roles[person]
            if value is None:
                roles.pop(action.target, None)
            else:
                roles[action.target] = value
        elif what == "sanction":
            assert value is not None
            self._sanctions[(action.room, action.target, value)] = action.sanction()
        elif what == "lift":
            assert value is not None
            self._sanctions.pop((action.room, action.target, value), None)
        elif what == "rules":
            self._rules[action.room] = Rules(**(action.rules or {}))
        elif what == "invite":
            self._invited.add((action.room, action.target))
        elif what == "uninvite":
            self._invited.discard((action.room, action.target))
        elif what == "link":
            for key in [k for k, a in self._links.items() if k[0] == action.room and _expired(a, action.ts)]:
                del self._links[key]
            self._links[(action.room, action.link or "")] = action
        elif what == "unlink":
            self._links.pop((action.room, action.link or ""), None)
        elif what == "resolve" and action.report is not None:
            open_ = self._reports.get(action.report)
            if open_ is not None and open_.room == action.room:
                del self._reports[action.report]
                del self._open[(open_.room, open_.actor, open_.message)]
        if not roles:
            del self._roles[action.room]
        self._log.append(action)

    async def claim(self, action: Action) -> bool:
        roles = self._roles.setdefault(action.room, {})
        if OWNER in roles.values():
            return False
        roles[action.target] = OWNER
        self._log.append(action)
        return True

    async def audit(self, room: str | None, limit: int) -> list[Action]:
        return [a for a in self._log if room is None or a.room == room][-limit:]

    async def rooms(self) -> list[str]:
        return sorted(set(self._roles) | {room for room, _, _ in self._sanctions})

    def listen(self, listener: Listener) -> asyncio.Future[None]:
        return _heard_already()  # one process: nobody else changes anything

    async def close(self) -> None:
        pass


class SQLiteModeration(SQLiteSide):
    """The moderation tables of the chat's SQLite file (schema version 7),
    used from one thread with its own connection, each change one
    transaction with its audit entry."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "moderation")

    async def _run(self, work: Callable[[sqlite3.Connection], Any], write: bool = False) -> Any:
        from .backends.sqlite import transaction

        def run(con: sqlite3.Connection) -> Any:
            if not write:
                # A read needs no lock: the message writer goes on meanwhile.
                return work(con)
            with transaction(con) as locked:
                return work(locked)

        return await self._in_thread(run)

    async def roles(self, room: str) -> dict[str, str]:
        rows = await self._run(
            lambda con: con.execute("SELECT person, role FROM room_roles WHERE room = ?", (room,)).fetchall()
        )
        return dict(rows)

    async def link(self, room: str, link: str) -> Action | None:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT action FROM invite_links WHERE room = ? AND id = ?", (room, link)
            ).fetchall()
        )
        return Action.from_json(rows[0][0]) if rows else None

    async def links(self, room: str) -> list[Action]:
        rows = await self._run(
            lambda con: con.execute("SELECT action FROM invite_links WHERE room = ?", (room,)).fetchall()
        )
        return sorted((Action.from_json(row[0]) for row in rows), key=lambda a: a.ts)

    async def rules(self, room: str) -> Rules:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT topic, private, read_only FROM room_rules WHERE room = ?", (room,)
            ).fetchall()
        )
        return Rules(rows[0][0], bool(rows[0][1]), bool(rows[0][2])) if rows else Rules()

    async def invited(self, room: str, person: str) -> bool:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT 1 FROM invitations WHERE room = ? AND person = ?", (room, person)
            ).fetchall()
        )
        return bool(rows)

    async def sanctions(self, room: str, person: str) -> list[Sanction]:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT room, person, kind, until, reason, actor, ts FROM sanctions "
                "WHERE room = ? AND person = ?",
                (room, person),
            ).fetchall()
        )
        return [Sanction(*row) for row in rows]

    async def apply(self, action: Action) -> None:
        what, value = _changes(action)

        def work(con: sqlite3.Connection) -> None:
            if what == "role":
                if value == OWNER:
                    con.execute("DELETE FROM room_roles WHERE room = ? AND role = 'owner'", (action.room,))
                if value is None:
                    con.execute(
                        "DELETE FROM room_roles WHERE room = ? AND person = ?", (action.room, action.target)
                    )
                else:
                    con.execute(
                        "INSERT OR REPLACE INTO room_roles (room, person, role) VALUES (?, ?, ?)",
                        (action.room, action.target, value),
                    )
            elif what == "sanction":
                s = action.sanction()
                con.execute(
                    "INSERT OR REPLACE INTO sanctions (room, person, kind, until, reason, actor, ts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (s.room, s.person, s.kind, s.until, s.reason, s.actor, s.ts),
                )
            elif what == "lift":
                con.execute(
                    "DELETE FROM sanctions WHERE room = ? AND person = ? AND kind = ?",
                    (action.room, action.target, value),
                )
            elif what == "rules":
                r = Rules(**(action.rules or {}))
                con.execute(
                    "INSERT OR REPLACE INTO room_rules (room, topic, private, read_only) VALUES (?, ?, ?, ?)",
                    (action.room, r.topic, int(r.private), int(r.read_only)),
                )
            elif what == "invite":
                con.execute(
                    "INSERT OR IGNORE INTO invitations (room, person) VALUES (?, ?)",
                    (action.room, action.target),
                )
            elif what == "uninvite":
                con.execute(
                    "DELETE FROM invitations WHERE room = ? AND person = ?", (action.room, action.target)
                )
            elif what == "link":
                con.execute(
                    "DELETE FROM invite_links WHERE room = ? AND until <= ?", (action.room, action.ts)
                )
                con.execute(
                    "INSERT INTO invite_links (room, id, actor, until, action) VALUES (?, ?, ?, ?, ?)",
                    (action.room, action.link, action.actor, action.until, action.to_json()),
                )
            elif what == "unlink":
                con.execute("DELETE FROM invite_links WHERE room = ? AND id = ?", (action.room, action.link))
            elif what == "resolve":
                con.execute(
                    "UPDATE reports SET resolved = 1 WHERE seq = ? AND room = ?", (action.report, action.room)
                )
            con.execute("INSERT INTO audit_log (room, action) VALUES (?, ?)", (action.room, action.to_json()))

        await self._run(work, write=True)

    async def report(self, action: Action) -> tuple[Action, bool]:
        def work(con: sqlite3.Connection) -> tuple[Action, bool]:
            # The room's open reports only (its partial index): few, as
            # reports count against the flood limit and are resolved.
            mine = 0
            for (text,) in con.execute(
                "SELECT action FROM reports WHERE room = ? AND resolved = 0 ORDER BY seq", (action.room,)
            ):
                kept = Action.from_json(text)
                if kept.actor == action.actor and kept.message == action.message:
                    return kept, False
                mine += kept.actor == action.actor
            if mine >= MAX_OPEN_REPORTS:
                raise TooManyReports()
            seq = con.execute(
                "INSERT INTO reports (room, action) VALUES (?, ?) RETURNING seq",
                (action.room, action.to_json()),
            ).fetchone()[0]
            numbered = dataclasses.replace(action, report=seq)
            con.execute("UPDATE reports SET action = ? WHERE seq = ?", (numbered.to_json(), seq))
            con.execute(
                "INSERT INTO audit_log (room, action) VALUES (?, ?)", (action.room, numbered.to_json())
            )
            return numbered, True

        return await self._run(work, write=True)

    async def reports(self, room: str, limit: int) -> list[Action]:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT action FROM reports WHERE room = ? AND resolved = 0 ORDER BY seq LIMIT ?",
                (room, limit),
            ).fetchall()
        )
        return [Action.from_json(row[0]) for row in rows]

    async def claim(self, action: Action) -> bool:
        def work(con: sqlite3.Connection) -> bool:
            claimed = con.execute(
                "INSERT INTO room_roles (room, person, role) SELECT ?, ?, 'owner' "
                "WHERE NOT EXISTS (SELECT 1 FROM room_roles WHERE room = ? AND role = 'owner') "
                "ON CONFLICT DO NOTHING",
                (action.room, action.target, action.room),
            ).rowcount
            if claimed:
                con.execute(
                    "INSERT INTO audit_log (room, action) VALUES (?, ?)", (action.room, action.to_json())
                )
            return bool(claimed)

        return bool(await self._run(work, write=True))

    async def audit(self, room: str | None, limit: int) -> list[Action]:
        def work(con: sqlite3.Connection) -> list[tuple]:
            if room is None:
                return con.execute(
                    "SELECT action FROM audit_log ORDER BY seq DESC LIMIT ?", (limit,)
                ).fetchall()
            return con.execute(
                "SELECT action FROM audit_log WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, limit)
            ).fetchall()

        return [Action.from_json(row[0]) for row in reversed(await self._run(work))]

    async def rooms(self) -> list[str]:
        rows = await self._run(
            lambda con: con.execute(
                "SELECT room FROM room_roles UNION SELECT room FROM sanctions ORDER BY room"
            ).fetchall()
        )
        return [row[0] for row in rows]

    def listen(self, listener: Listener) -> asyncio.Future[None]:
        return _heard_already()  # a SQLite file serves one process


def _heard_already() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class _Hearing:
    """The task of a shared store that hears the other processes' actions
    (``listen(listener, ready)``, which sets ``ready`` once it does), started
    once; what :meth:`ModerationStore.listen` returns."""

    def __init__(self, listen: Callable[[Listener, asyncio.Future[None]], Coroutine[Any, Any, None]]) -> None:
        self._listen = listen
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future[None] | None = None

    def start(self, listener: Listener) -> asyncio.Future[None]:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.ensure_future(self._listen(listener, self._ready))
        return self._ready

    async def stop(self) -> None:
        task, self._task, self._ready = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _started(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _envelope(node: str, action: Action) -> str:
    return json.dumps({"node": node, "action": action.to_json()})


def _opened(node: str, text: str | bytes) -> Action | None:
    """The action of another node's envelope; None for this node's own
    (already applied here) or for one that cannot be read."""
    try:
        envelope = json.loads(text)
        if envelope["node"] == node:
            return None
        return Action.from_json(envelope["action"])
    except (ValueError, TypeError, KeyError):
        log.warning("ignored a moderation notice that is not one")
        return None


#: The newest audit entries Redis keeps (a list in memory; the SQL stores
#: keep every one): at a few hundred bytes each, some 40 MB at most.
REDIS_AUDIT_KEPT = 100_000


class RedisModeration(RedisSide):
    """Keys under ``prefix``: ``roles:ROOM`` (a hash of id -> role),
    ``owner:ROOM`` (the owner's id, set once by a claim, atomically),
    ``sanctions:ROOM`` (a hash of KIND:ID -> the sanction, JSON),
    ``rules:ROOM`` (JSON), ``invited:ROOM`` (a set of ids), ``links:ROOM``
    (a hash of link id -> the "link" action, JSON), ``reports:ROOM`` (a
    hash of number -> the open report), ``reports-open:ROOM`` (REPORTER:MESSAGE
    -> its number), ``reports-by:ROOM`` (reporter -> how many open),
    ``moderated`` (the set of rooms with any) and ``audit`` (a list of
    actions, JSON, the newest :data:`REDIS_AUDIT_KEPT`). A change is one
    MULTI/EXEC with its audit entry and its PUBLISH on ``PREFIX:moderation``."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix, "moderation")
        self.node = os.urandom(6).hex()
        self._hearing = _Hearing(self._listen)

    async def roles(self, room: str) -> dict[str, str]:
        return await self._call("hgetall", self._key("roles", room))

    async def rules(self, room: str) -> Rules:
        raw = await self._call("get", self._key("rules", room))
        return Rules(**json.loads(raw)) if raw else Rules()

    async def invited(self, room: str, person: str) -> bool:
        return bool(await self._call("sismember", self._key("invited", room), person))

    async def sanctions(self, room: str, person: str) -> list[Sanction]:
        raw = await self._call("hmget", self._key("sanctions", room), f"{MUTE}:{person}", f"{BAN}:{person}")
        return [Sanction(**json.loads(r)) for r in raw if r is not None]

    async def link(self, room: str, link: str) -> Action | None:
        text = await self._call("hget", self._key("links", room), link)
        return Action.from_json(text) if text else None

    async def links(self, room: str) -> list[Action]:
        found = await self._call("hgetall", self._key("links", room))
        return sorted((Action.from_json(a) for a in found.values()), key=lambda a: a.ts)

    def _record(self, pipe: Any, action: Action) -> None:
        pipe.rpush(self._key("audit"), action.to_json())
        pipe.ltrim(self._key("audit"), -REDIS_AUDIT_KEPT, -1)
        pipe.publish(self._key("moderation"), _envelope(self.node, action))

    async def apply(self, action: Action) -> None:
        what, value = _changes(action)
        roles = self._key("roles", action.room)
        owners: list[str] = []
        if what == "role":
            current = await self.roles(action.room)
            owners = [p for p, r in current.items() if r == OWNER]
        resolved: Action | None = None
        if what == "resolve":
            text = await self._call("hget", self._key("reports", action.room), str(action.report))
            resolved = Action.from_json(text) if text else None
        expired: list[str] = []
        if what == "link":
            expired = [a.link or "" for a in await self.links(action.room) if _expired(a, action.ts)]

        def build(pipe: Any) -> None:
            if what == "role":
                # The owner's seat (see claim) follows the owner.
                if value == OWNER:
                    if others := [p for p in owners if p != action.target]:
                        pipe.hdel(roles, *others)
                    pipe.set(self._key("owner", action.room), action.target)
                elif action.target in owners:
                    pipe.delete(self._key("owner", action.room))
                if value is None:
                    pipe.hdel(roles, action.target)
                else:
                    pipe.hset(roles, action.target, value)
            elif what == "sanction":
                sanction = json.dumps(action.sanction().__dict__)
                pipe.hset(self._key("sanctions", action.room), f"{value}:{action.target}", sanction)
            elif what == "lift":
                pipe.hdel(self._key("sanctions", action.room), f"{value}:{action.target}")
            elif what == "rules":
                pipe.set(self._key("rules", action.room), json.dumps(Rules(**(action.rules or {})).frame()))
            elif what == "invite":
                pipe.sadd(self._key("invited", action.room), action.target)
            elif what == "uninvite":
                pipe.srem(self._key("invited", action.room), action.target)
            elif what == "link":
                if expired:
                    pipe.hdel(self._key("links", action.room), *expired)
                pipe.hset(self._key("links", action.room), action.link or "", action.to_json())
            elif what == "unlink":
                pipe.hdel(self._key("links", action.room), action.link or "")
            elif what == "resolve":
                # Only once (HDEL answers 1 for the first of two resolves).
                pipe.hdel(self._key("reports", action.room), str(action.report))
                if resolved is not None:
                    pipe.hdel(self._key("reports-open", action.room), f"{resolved.actor}:{resolved.message}")
            pipe.sadd(self._key("moderated"), action.room)
            self._record(pipe, action)

        replies = await self._exec(build)
        # A report by someone since forgotten (actor "") counts against nobody.
        if what == "resolve" and resolved is not None and resolved.actor and replies[0]:
            await self._call("hincrby", self._key("reports-by", action.room), resolved.actor, -1)

    async def report(self, action: Action) -> tuple[Action, bool]:
        # Each open report's (reporter, message) -> its number: HSETNX lets
        # one of two same reports in (of any process), the other finds it.
        # Each reporter's count of open ones goes up first: of many at
        # once, those past the cap go down again and are refused.
        opened = self._key("reports-open", action.room)
        field = f"{action.actor}:{action.message}"
        number = await self._call("incr", self._key("report-seq"))
        mine = self._key("reports-by", action.room)
        counted = await self._call("hincrby", mine, action.actor, 1) <= MAX_OPEN_REPORTS
        if counted and await self._call("hsetnx", opened, field, number):
            numbered = dataclasses.replace(action, report=number)

            def build(pipe: Any) -> None:
                pipe.hset(self._key("reports", action.room), str(numbered.report), numbered.to_json())
                self._record(pipe, numbered)

            try:
                await self._exec(build)
            except StorageError:
                # Not kept: free its slot and count, or a later same report
                # would find a report nobody can see or resolve.
                with contextlib.suppress(StorageError):
                    await self._call("hdel", opened, field)
                    await self._call("hincrby", mine, action.actor, -1)
                raise
            return numbered, True
        await self._call("hincrby", mine, action.actor, -1)
        kept = await self._call("hget", opened, field)
        if kept is None:
            raise TooManyReports()
        text = await self._call("hget", self._key("reports", action.room), kept)
        # Not there yet: the first is still being kept; it has this number.
        found = Action.from_json(text) if text else dataclasses.replace(action, report=int(kept or 0))
        return found, False

    async def reports(self, room: str, limit: int) -> list[Action]:
        found = await self._call("hgetall", self._key("reports", room))
        return sorted((Action.from_json(a) for a in found.values()), key=lambda a: a.report or 0)[:limit]

    async def claim(self, action: Action) -> bool:
        # The owner's seat is taken atomically first: of two first comers, one.
        if not await self._call("set", self._key("owner", action.room), action.target, nx=True):
            return False

        def build(pipe: Any) -> None:
            pipe.hset(self._key("roles", action.room), action.target, OWNER)
            pipe.sadd(self._key("moderated"), action.room)
            self._record(pipe, action)

        await self._exec(build)
        return True

    async def audit(self, room: str | None, limit: int) -> list[Action]:
        # The whole list for one room: an operator's occasional look.
        actions = [Action.from_json(a) for a in await self._call("lrange", self._key("audit"), 0, -1)]
        return [a for a in actions if room is None or a.room == room][-limit:]

    async def rooms(self) -> list[str]:
        # The set remembers every room ever moderated: those with nothing
        # kept any more are left out (an operator's occasional look).
        rooms = []
        for room in sorted(await self._call("smembers", self._key("moderated"))):
            if await self._call("hlen", self._key("roles", room)) or await self._call(
                "hlen", self._key("sanctions", room)
            ):
                rooms.append(room)
        return rooms

    def listen(self, listener: Listener) -> asyncio.Future[None]:
        return self._hearing.start(listener)

    async def _listen(self, listener: Listener, ready: asyncio.Future[None]) -> None:
        import redis

        lost = False
        missed = True  # anything told before the first subscription
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._key("moderation"))
                async for item in pubsub.listen():
                    if item["type"] == "subscribe":
                        # Redis's answer: subscribed from here on (subscribe()
                        # only sent the command; a PUBLISH could still beat it).
                        _started(ready)
                        if lost or missed:
                            listener(None)  # what was said meanwhile is lost: read again
                            lost = missed = False
                        continue
                    if item["type"] != "message":
                        continue
                    action = _opened(self.node, item["data"])
                    if action is not None:
                        listener(action)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                if not lost:
                    log.warning("moderation: lost Redis (%s); listening again", exc)
                lost = True
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()

    async def close(self) -> None:
        await self._hearing.stop()
        await self._redis.aclose()


class PostgresModeration:
    """The moderation tables of the Postgres at ``url`` (schema version 5),
    through a small pool of its own; each change one transaction with its
    audit entry and its NOTIFY, which Postgres sends when it commits."""

    def __init__(self, url: str) -> None:
        from .backends.postgres import normalize_url

        self._url = normalize_url(url)
        self._pool: Any = None  # a backends.postgres.Pool (asyncpg has no types)
        self._opening = asyncio.Lock()
        self.node = os.urandom(6).hex()
        self._hearing = _Hearing(self._listen)

    async def _pool_(self) -> Any:
        from .backends.postgres import create_pool, migrate

        async with self._opening:
            if self._pool is None:
                self._pool = await create_pool(self._url, max_size=4)
                async with self._pool.acquire() as con:
                    await migrate(con)
        return self._pool

    async def _transaction(self, work: Callable[[Any], Any]) -> Any:
        from .backends.postgres import ERRORS

        try:
            pool = await self._pool_()
            async with pool.acquire() as con, con.transaction():
                return await work(con)
        except ERRORS as exc:
            raise StorageError(f"moderation: {exc}") from None

    async def roles(self, room: str) -> dict[str, str]:
        rows = await self._transaction(
            lambda con: con.fetch("SELECT person, role FROM room_roles WHERE room = $1", room)
        )
        return {row[0]: row[1] for row in rows}

    async def link(self, room: str, link: str) -> Action | None:
        rows = await self._transaction(
            lambda con: con.fetch("SELECT action FROM invite_links WHERE room = $1 AND id = $2", room, link)
        )
        return Action.from_json(rows[0][0]) if rows else None

    async def links(self, room: str) -> list[Action]:
        rows = await self._transaction(
            lambda con: con.fetch("SELECT action FROM invite_links WHERE room = $1", room)
        )
        return sorted((Action.from_json(row[0]) for row in rows), key=lambda a: a.ts)

    async def rules(self, room: str) -> Rules:
        rows = await self._transaction(
            lambda con: con.fetch("SELECT topic, private, read_only FROM room_rules WHERE room = $1", room)
        )
        return Rules(rows[0][0], rows[0][1], rows[0][2]) if rows else Rules()

    async def invited(self, room: str, person: str) -> bool:
        rows = await self._transaction(
            lambda con: con.fetch("SELECT 1 FROM invitations WHERE room = $1 AND person = $2", room, person)
        )
        return bool(rows)

    async def sanctions(self, room: str, person: str) -> list[Sanction]:
        rows = await self._transaction(
            lambda con: con.fetch(
                "SELECT room, person, kind, until, reason, actor, ts FROM sanctions "
                "WHERE room = $1 AND person = $2",
                room,
                person,
            )
        )
        return [Sanction(*row) for row in rows]

    async def _record(self, con: Any, action: Action) -> None:
        await con.execute(
            "INSERT INTO audit_log (room, action) VALUES ($1, $2)", action.room, action.to_json()
        )
        await con.execute("SELECT pg_notify($1, $2)", CHANNEL, _envelope(self.node, action))

    async def apply(self, action: Action) -> None:
        what, value = _changes(action)

        async def work(con: Any) -> None:
            if what == "role":
                if value == OWNER:
                    await con.execute(
                        "DELETE FROM room_roles WHERE room = $1 AND role = 'owner'", action.room
                    )
                if value is None:
                    await con.execute(
                        "DELETE FROM room_roles WHERE room = $1 AND person = $2", action.room, action.target
                    )
                else:
                    await con.execute(
                        "INSERT INTO room_roles (room, person, role) VALUES ($1, $2, $3) "
                        "ON CONFLICT (room, person) DO UPDATE SET role = excluded.role",
                        action.room,
                        action.target,
                        value,
                    )
            elif what == "sanction":
                s = action.sanction()
                await con.execute(
                    "INSERT INTO sanctions (room, person, kind, until, reason, actor, ts) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (room, person, kind) DO UPDATE "
                    "SET until = excluded.until, reason = excluded.reason, actor = excluded.actor, "
                    "ts = excluded.ts",
                    s.room,
                    s.person,
                    s.kind,
                    s.until,
                    s.reason,
                    s.actor,
                    s.ts,
                )
            elif what == "lift":
                await con.execute(
                    "DELETE FROM sanctions WHERE room = $1 AND person = $2 AND kind = $3",
                    action.room,
                    action.target,
                    value,
                )
            elif what == "rules":
                r = Rules(**(action.rules or {}))
                await con.execute(
                    "INSERT INTO room_rules (room, topic, private, read_only) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (room) DO UPDATE SET topic = excluded.topic, private = excluded.private, "
                    "read_only = excluded.read_only",
                    action.room,
                    r.topic,
                    r.private,
                    r.read_only,
                )
            elif what == "invite":
                await con.execute(
                    "INSERT INTO invitations (room, person) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    action.room,
                    action.target,
                )
            elif what == "uninvite":
                await con.execute(
                    "DELETE FROM invitations WHERE room = $1 AND person = $2", action.room, action.target
                )
            elif what == "link":
                await con.execute(
                    "DELETE FROM invite_links WHERE room = $1 AND until <= $2", action.room, action.ts
                )
                await con.execute(
                    "INSERT INTO invite_links (room, id, actor, until, action) VALUES ($1, $2, $3, $4, $5)",
                    action.room,
                    action.link,
                    action.actor,
                    action.until,
                    action.to_json(),
                )
            elif what == "unlink":
                await con.execute(
                    "DELETE FROM invite_links WHERE room = $1 AND id = $2", action.room, action.link
                )
            elif what == "resolve":
                await con.execute(
                    "UPDATE reports SET resolved = true WHERE seq = $1 AND room = $2",
                    action.report,
                    action.room,
                )
            await self._record(con, action)

        await self._transaction(work)

    async def report(self, action: Action) -> tuple[Action, bool]:
        async def work(con: Any) -> tuple[Action, bool]:
            # One at a time per reporter and room (of every process), so two
            # same reports cannot both find none open.
            await con.execute(
                "SELECT pg_advisory_xact_lock(hashtext('report'), hashtext($1 || ':' || $2))",
                action.room,
                action.actor,
            )
            mine = 0
            for row in await con.fetch(
                "SELECT action FROM reports WHERE room = $1 AND NOT resolved ORDER BY seq", action.room
            ):
                kept = Action.from_json(row[0])
                if kept.actor == action.actor and kept.message == action.message:
                    return kept, False
                mine += kept.actor == action.actor
            if mine >= MAX_OPEN_REPORTS:
                raise TooManyReports()
            seq = await con.fetchval(
                "INSERT INTO reports (room, action) VALUES ($1, $2) RETURNING seq",
                action.room,
                action.to_json(),
            )
            numbered = dataclasses.replace(action, report=seq)
            await con.execute("UPDATE reports SET action = $1 WHERE seq = $2", numbered.to_json(), seq)
            await self._record(con, numbered)
            return numbered, True

        return await self._transaction(work)

    async def reports(self, room: str, limit: int) -> list[Action]:
        rows = await self._transaction(
            lambda con: con.fetch(
                "SELECT action FROM reports WHERE room = $1 AND NOT resolved ORDER BY seq LIMIT $2",
                room,
                limit,
            )
        )
        return [Action.from_json(row[0]) for row in rows]

    async def claim(self, action: Action) -> bool:
        async def work(con: Any) -> bool:
            # The partial unique index admits one owner: of two first comers, one row.
            status = await con.execute(
                "INSERT INTO room_roles (room, person, role) VALUES ($1, $2, 'owner') ON CONFLICT DO NOTHING",
                action.room,
                action.target,
            )
            if status.endswith(" 0"):
                return False
            await self._record(con, action)
            return True

        return bool(await self._transaction(work))

    async def audit(self, room: str | None, limit: int) -> list[Action]:
        if room is None:
            rows = await self._transaction(
                lambda con: con.fetch("SELECT action FROM audit_log ORDER BY seq DESC LIMIT $1", limit)
            )
        else:
            rows = await self._transaction(
                lambda con: con.fetch(
                    "SELECT action FROM audit_log WHERE room = $1 ORDER BY seq DESC LIMIT $2", room, limit
                )
            )
        return [Action.from_json(row[0]) for row in reversed(rows)]

    async def rooms(self) -> list[str]:
        rows = await self._transaction(
            lambda con: con.fetch(
                "SELECT room FROM room_roles UNION SELECT room FROM sanctions ORDER BY room"
            )
        )
        return [row[0] for row in rows]

    def listen(self, listener: Listener) -> asyncio.Future[None]:
        return self._hearing.start(listener)

    async def _listen(self, listener: Listener, ready: asyncio.Future[None]) -> None:
        import asyncpg

        from .backends.postgres import ERRORS

        lost = False
        missed = True  # anything told before the first LISTEN
        while True:
            con = None
            try:
                await self._pool_()  # the schema, before the first notice
                con = await asyncpg.connect(self._url, timeout=5.0)
                gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                def heard(_con: Any, _pid: int, _channel: str, payload: str) -> None:
                    action = _opened(self.node, payload)
                    if action is not None:
                        listener(action)

                await con.add_listener(CHANNEL, heard)
                con.add_termination_listener(lambda _con, gone=gone: gone.done() or gone.set_result(None))
                _started(ready)
                if lost or missed:
                    listener(None)
                    lost = missed = False
                await gone
                raise ConnectionError("the listening connection was lost")
            except asyncio.CancelledError:
                raise
            except (*ERRORS, ConnectionError) as exc:
                if not lost:
                    log.warning("moderation: lost Postgres (%s); listening again", exc)
                lost = True
                await asyncio.sleep(0.5)
            finally:
                if con is not None:
                    con.terminate()

    async def close(self) -> None:
        await self._hearing.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def make_store(settings: Settings) -> ModerationStore:
    """The store beside the messages: Postgres, Redis, memory or the SQLite file."""
    if settings.database_url:
        return PostgresModeration(settings.database_url)
    if settings.redis_url:
        return RedisModeration(settings.redis_url, settings.redis_prefix)
    if settings.storage == "memory":
        return MemoryModeration()
    return SQLiteModeration(settings.db)
