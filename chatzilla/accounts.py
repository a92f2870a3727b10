"""Where people, sign-in links, sessions and bot tokens are kept.

Secrets (a link's, a session's, a bot token's) are never stored: only their
SHA-256 digest (:func:`chatzilla.signin.digest`), so a copy of the database
signs nobody in. Times are seconds since the epoch, passed in by the caller.

Four stores, one per kind of backend: :class:`MemoryAccounts` (lost on
restart), :class:`SQLiteAccounts` (the chat's SQLite file, tables of schema
version 4, on a thread of its own), :class:`RedisAccounts` (hashes and
keys under the deployment's prefix, shared by every process) and
:class:`PostgresAccounts` (tables beside the messages, shared too). Each method
raises :class:`~chatzilla.backends.base.StorageError` when the store cannot answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import time
from typing import Any, Protocol

from .backends.base import StorageError
from .identity import Person
from .redis_side import RedisSide
from .sqlite_side import SQLiteSide


@dataclasses.dataclass(frozen=True)
class Link:
    """A sign-in link asked for ``email``, leading to ``room`` once opened,
    usable until ``expires``."""

    email: str
    room: str
    expires: float


class Accounts(Protocol):
    """What sign-in needs kept."""

    async def person_by_email(self, email: str) -> Person | None:
        """The person with this address, if they ever signed in."""

    async def person_by_id(self, person_id: str) -> Person | None:
        """The person with this public id, if there is one."""

    async def add_person(self, person: Person) -> Person:
        """Keep ``person``; if someone has its address already (two first
        sign-ins at once), keep nothing and return that one."""

    async def rename(self, person_id: str, name: str) -> Person | None:
        """Give the person a new display name; None if there is no such person."""

    async def add_link(self, digest: str, link: Link) -> None:
        """Keep a link until its expiry."""

    async def peek_link(self, digest: str, now: float) -> Link | None:
        """The link, if it exists and has not expired; it stays usable."""

    async def take_link(self, digest: str, now: float) -> Link | None:
        """The link, used up: it works once, whoever asks at the same time."""

    async def add_session(self, digest: str, person_id: str, expires: float) -> None:
        """A browser signed in as the person until ``expires``."""

    async def session_person(self, digest: str, now: float) -> Person | None:
        """Who the session is, or None if it is unknown, ended or expired."""

    async def drop_session(self, digest: str) -> None:
        """End a session (sign out); safe to call twice."""

    async def add_token(self, digest: str, person_id: str, label: str, created: float) -> None:
        """A bot token of the person's, kept until revoked."""

    async def token_person(self, digest: str) -> Person | None:
        """Whose bot token this is, or None."""

    async def close(self) -> None:
        """Release what the store holds; safe to call twice."""


class MemoryAccounts:
    """Everything in this process's memory, for ``--storage memory``."""

    def __init__(self) -> None:
        self._people: dict[str, Person] = {}
        self._by_email: dict[str, str] = {}
        self._links: dict[str, Link] = {}
        self._sessions: dict[str, tuple[str, float]] = {}
        self._tokens: dict[str, str] = {}

    async def person_by_email(self, email: str) -> Person | None:
        person_id = self._by_email.get(email)
        return None if person_id is None else self._people[person_id]

    async def person_by_id(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    async def add_person(self, person: Person) -> Person:
        existing = await self.person_by_email(person.email)
        if existing is not None:
            return existing
        self._people[person.id] = person
        self._by_email[person.email] = person.id
        return person

    async def rename(self, person_id: str, name: str) -> Person | None:
        person = self._people.get(person_id)
        if person is None:
            return None
        person = self._people[person_id] = dataclasses.replace(person, name=name)
        return person

    async def add_link(self, digest: str, link: Link) -> None:
        self._prune(link.expires - 2 * 3600)
        self._links[digest] = link

    async def peek_link(self, digest: str, now: float) -> Link | None:
        link = self._links.get(digest)
        return link if link is not None and link.expires > now else None

    async def take_link(self, digest: str, now: float) -> Link | None:
        link = self._links.pop(digest, None)
        return link if link is not None and link.expires > now else None

    def _prune(self, now: float) -> None:
        # Expired links would otherwise stay for the process's life.
        for digest in [d for d, link in self._links.items() if link.expires <= now]:
            del self._links[digest]

    async def add_session(self, digest: str, person_id: str, expires: float) -> None:
        self._sessions[digest] = (person_id, expires)

    async def session_person(self, digest: str, now: float) -> Person | None:
        person_id, expires = self._sessions.get(digest, ("", 0.0))
        return self._people.get(person_id) if expires > now else None

    async def drop_session(self, digest: str) -> None:
        self._sessions.pop(digest, None)

    async def add_token(self, digest: str, person_id: str, label: str, created: float) -> None:
        self._tokens[digest] = person_id

    async def token_person(self, digest: str) -> Person | None:
        person_id = self._tokens.get(digest)
        return None if person_id is None else self._people.get(person_id)

    async def close(self) -> None:
        pass


class SQLiteAccounts(SQLiteSide):
    """The tables of schema version 4 in the chat's SQLite file, used from
    one thread with its own connection (WAL lets it work beside the message
    writer). Opening upgrades the schema if the backend has not already."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "accounts")

    async def _run(self, sql: str, args: tuple = (), fetch: bool = False) -> list[tuple]:
        def work(con: sqlite3.Connection) -> list[tuple]:
            cursor = con.execute(sql, args)
            return cursor.fetchall() if fetch else []

        return await self._in_thread(work)

    async def _person(self, where: str, value: str) -> Person | None:
        rows = await self._run(f"SELECT id, email, name FROM people WHERE {where} = ?", (value,), True)
        return Person(*rows[0]) if rows else None

    async def person_by_email(self, email: str) -> Person | None:
        return await self._person("email", email)

    async def person_by_id(self, person_id: str) -> Person | None:
        return await self._person("id", person_id)

    async def add_person(self, person: Person) -> Person:
        await self._run(
            "INSERT INTO people (id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO NOTHING",
            (person.id, person.email, person.name),
        )
        found = await self.person_by_email(person.email)
        assert found is not None
        return found

    async def rename(self, person_id: str, name: str) -> Person | None:
        await self._run("UPDATE people SET name = ? WHERE id = ?", (name, person_id))
        return await self._person("id", person_id)

    async def add_link(self, digest: str, link: Link) -> None:
        # Expired links are dropped as new ones come: the table stays small.
        await self._run("DELETE FROM signin_links WHERE expires <= ?", (link.expires - 2 * 3600,))
        await self._run(
            "INSERT OR REPLACE INTO signin_links (digest, email, room, expires) VALUES (?, ?, ?, ?)",
            (digest, link.email, link.room, link.expires),
        )

    async def peek_link(self, digest: str, now: float) -> Link | None:
        rows = await self._run(
            "SELECT email, room, expires FROM signin_links WHERE digest = ? AND expires > ?",
            (digest, now),
            True,
        )
        return Link(*rows[0]) if rows else None

    async def take_link(self, digest: str, now: float) -> Link | None:
        # One statement: of two requests with the same link, one gets the row.
        rows = await self._run(
            "DELETE FROM signin_links WHERE digest = ? RETURNING email, room, expires", (digest,), True
        )
        return Link(*rows[0]) if rows and rows[0][2] > now else None

    async def add_session(self, digest: str, person_id: str, expires: float) -> None:
        await self._run("DELETE FROM sessions WHERE expires <= ?", (expires - 400 * 86400,))
        await self._run(
            "INSERT INTO sessions (digest, person, expires) VALUES (?, ?, ?)", (digest, person_id, expires)
        )

    async def session_person(self, digest: str, now: float) -> Person | None:
        rows = await self._run(
            "SELECT p.id, p.email, p.name FROM sessions s JOIN people p ON p.id = s.person "
            "WHERE s.digest = ? AND s.expires > ?",
            (digest, now),
            True,
        )
        return Person(*rows[0]) if rows else None

    async def drop_session(self, digest: str) -> None:
        await self._run("DELETE FROM sessions WHERE digest = ?", (digest,))

    async def add_token(self, digest: str, person_id: str, label: str, created: float) -> None:
        await self._run(
            "INSERT INTO bot_tokens (digest, person, label, created) VALUES (?, ?, ?, ?)",
            (digest, person_id, label, created),
        )

    async def token_person(self, digest: str) -> Person | None:
        rows = await self._run(
            "SELECT p.id, p.email, p.name FROM bot_tokens t JOIN people p ON p.id = t.person "
            "WHERE t.digest = ?",
            (digest,),
            True,
        )
        return Person(*rows[0]) if rows else None


class RedisAccounts(RedisSide):
    """Keys under ``prefix``: ``person:ID`` (a hash of email and name),
    ``email:ADDRESS`` (the id), ``link:DIGEST`` and ``session:DIGEST``
    (expiring with what they stand for) and ``token:DIGEST``."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix, "accounts")

    async def _person(self, person_id: str | None) -> Person | None:
        if not person_id:
            return None
        fields = await self._call("hgetall", self._key("person", person_id))
        return Person(person_id, fields["email"], fields["name"]) if fields else None

    async def person_by_email(self, email: str) -> Person | None:
        return await self._person(await self._call("get", self._key("email", email)))

    async def person_by_id(self, person_id: str) -> Person | None:
        return await self._person(person_id)

    async def add_person(self, person: Person) -> Person:
        # The address is claimed first, atomically: two first sign-ins at
        # once make one person.
        if await self._call("set", self._key("email", person.email), person.id, nx=True):
            await self._call(
                "hset", self._key("person", person.id), mapping={"email": person.email, "name": person.name}
            )
            return person
        existing = await self.person_by_email(person.email)
        return existing if existing is not None else person

    async def rename(self, person_id: str, name: str) -> Person | None:
        if not await self._call("exists", self._key("person", person_id)):
            return None
        await self._call("hset", self._key("person", person_id), "name", name)
        return await self._person(person_id)

    async def add_link(self, digest: str, link: Link) -> None:
        value = json.dumps(dataclasses.asdict(link))
        # Expiry is checked on use; Redis drops the key an hour later (links
        # live minutes), whatever clock the caller keeps.
        await self._call("set", self._key("link", digest), value, ex=3600)

    async def _link(self, raw: str | None, now: float) -> Link | None:
        if raw is None:
            return None
        link = Link(**json.loads(raw))
        return link if link.expires > now else None

    async def peek_link(self, digest: str, now: float) -> Link | None:
        return await self._link(await self._call("get", self._key("link", digest)), now)

    async def take_link(self, digest: str, now: float) -> Link | None:
        return await self._link(await self._call("getdel", self._key("link", digest)), now)

    async def add_session(self, digest: str, person_id: str, expires: float) -> None:
        value = json.dumps([person_id, expires])
        # Expiry is checked on use; Redis drops the key by then (a minute at least).
        ttl = max(60, int(expires - time.time()) + 60)
        await self._call("set", self._key("session", digest), value, ex=ttl)

    async def session_person(self, digest: str, now: float) -> Person | None:
        raw = await self._call("get", self._key("session", digest))
        if raw is None:
            return None
        person_id, expires = json.loads(raw)
        return await self._person(person_id) if expires > now else None

    async def drop_session(self, digest: str) -> None:
        await self._call("delete", self._key("session", digest))

    async def add_token(self, digest: str, person_id: str, label: str, created: float) -> None:
        await self._call("set", self._key("token", digest), person_id)

    async def token_person(self, digest: str) -> Person | None:
        return await self._person(await self._call("get", self._key("token", digest)))

    async def close(self) -> None:
        await self._redis.aclose()


class PostgresAccounts:
    """The sign-in tables of the Postgres at ``url`` (schema version 2 of
    :mod:`chatzilla.backends.postgres_schema`), shared by every process
    that uses it, through a small pool of its own, made on first use."""

    def __init__(self, url: str) -> None:
        from .backends.postgres import normalize_url

        self._url = normalize_url(url)
        self._pool: Any = None  # a backends.postgres.Pool (asyncpg has no types)
        self._opening = asyncio.Lock()

    async def _fetch(self, sql: str, *args) -> list:
        # Imported here: only a Postgres deployment needs asyncpg loaded.
        from .backends.postgres import ERRORS, create_pool, migrate

        try:
            async with self._opening:
                if self._pool is None:
                    self._pool = await create_pool(self._url, max_size=4)
                    async with self._pool.acquire() as con:
                        await migrate(con)
            return await self._pool.fetch(sql, *args)
        except ERRORS as exc:
            raise StorageError(f"accounts: {exc}") from None

    async def _person(self, where: str, value: str) -> Person | None:
        rows = await self._fetch(f"SELECT id, email, name FROM people WHERE {where} = $1", value)
        return Person(*rows[0]) if rows else None

    async def person_by_email(self, email: str) -> Person | None:
        return await self._person("email", email)

    async def person_by_id(self, person_id: str) -> Person | None:
        return await self._person("id", person_id)

    async def add_person(self, person: Person) -> Person:
        await self._fetch(
            "INSERT INTO people (id, email, name) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
            person.id,
            person.email,
            person.name,
        )
        found = await self.person_by_email(person.email)
        assert found is not None
        return found

    async def rename(self, person_id: str, name: str) -> Person | None:
        await self._fetch("UPDATE people SET name = $1 WHERE id = $2", name, person_id)
        return await self._person("id", person_id)

    async def add_link(self, digest: str, link: Link) -> None:
        # Expired links are dropped as new ones come: the table stays small.
        await self._fetch("DELETE FROM signin_links WHERE expires <= $1", link.expires - 2 * 3600)
        await self._fetch(
            "INSERT INTO signin_links (digest, email, room, expires) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (digest) DO UPDATE SET email = excluded.email, room = excluded.room,"
            " expires = excluded.expires",
            digest,
            link.email,
            link.room,
            link.expires,
        )

    async def peek_link(self, digest: str, now: float) -> Link | None:
        rows = await self._fetch(
            "SELECT email, room, expires FROM signin_links WHERE digest = $1 AND expires > $2", digest, now
        )
        return Link(*rows[0]) if rows else None

    async def take_link(self, digest: str, now: float) -> Link | None:
        # One statement: of two requests with the same link, one gets the row.
        rows = await self._fetch(
            "DELETE FROM signin_links WHERE digest = $1 RETURNING email, room, expires", digest
        )
        return Link(*rows[0]) if rows and rows[0][2] > now else None

    async def add_session(self, digest: str, person_id: str, expires: float) -> None:
        await self._fetch("DELETE FROM sessions WHERE expires <= $1", expires - 400 * 86400)
        await self._fetch(
            "INSERT INTO sessions (digest, person, expires) VALUES ($1, $2, $3)", digest, person_id, expires
        )

    async def session_person(self, digest: str, now: float) -> Person | None:
        rows = await self._fetch(
            "SELECT p.id, p.email, p.name FROM sessions s JOIN people p ON p.id = s.person "
            "WHERE s.digest = $1 AND s.expires > $2",
            digest,
            now,
        )
        return Person(*rows[0]) if rows else None

    async def drop_session(self, digest: str) -> None:
        await self._fetch("DELETE FROM sessions WHERE digest = $1", digest)

    async def add_token(self, digest: str, person_id: str, label: str, created: float) -> None:
        await self._fetch(
            "INSERT INTO bot_tokens (digest, person, label, created) VALUES ($1, $2, $3, $4)",
            digest,
            person_id,
            label,
            created,
        )

    async def token_person(self, digest: str) -> Person | None:
        rows = await self._fetch(
            "SELECT p.id, p.email, p.name FROM bot_tokens t JOIN people p ON p.id = t.person "
            "WHERE t.digest = $1",
            digest,
        )
        return Person(*rows[0]) if rows else None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
