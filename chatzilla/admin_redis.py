"""``python -m chatzilla admin`` on Redis: the rooms, the people, and an
export in the JSON lines of the SQL storages (see :mod:`chatzilla.admin`),
read from the keys the Redis backend, sign-in accounts and the moderation
store keep under the deployment's prefix. Such an export imports into a
SQLite file or a Postgres database: a way off Redis, or a backup.

Reads only, a key or a page at a time (``SCAN``, stream ranges): the chat
goes on meanwhile, and what it changes during an export may or may not be
in it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .backends.redis import RedisBackend
from .chat import reactions_text
from .moderation import Action
from .redis_side import RedisSide

#: Messages read per stream range.
BATCH = 1000


class RedisDeployment(RedisSide):
    """The keys of the chat on the Redis at ``url`` under ``prefix``."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(url, prefix, "admin")
        # Its reads (pages of messages as they are now) are the chat's own.
        self._backend = RedisBackend(url, prefix)

    async def _names(self, kind: str) -> list[str]:
        """The ``NAME`` of every key ``PREFIX:kind:NAME``, sorted."""
        start = self._key(kind, "")
        found = []
        async for key in self._redis.scan_iter(match=start + "*", count=1000):
            found.append(key[len(start) :])
        return sorted(found)

    async def room_names(self) -> list[str]:
        """Rooms with messages, or anything moderation keeps."""
        moderated = await self._call("smembers", self._key("moderated"))
        return sorted(set(await self._names("seq")) | set(moderated))

    async def rooms(self) -> list[tuple[str, int, int, int, int]]:
        """Each room: its first and last ids, its roles and its sanctions."""
        found = []
        for room in await self.room_names():
            first, last = await self._backend.bounds(room)
            roles = await self._call("hlen", self._key("roles", room))
            sanctions = await self._call("hlen", self._key("sanctions", room))
            found.append((room, first, last, roles, sanctions))
        return found

    async def people(self) -> list[tuple[str, str, str]]:
        """Everyone who signed in: id, name, address; by name."""
        found = []
        for person in await self._names("person"):
            fields = await self._call("hgetall", self._key("person", person))
            if fields:
                found.append((person, fields.get("name", ""), fields.get("email", "")))
        return sorted(found, key=lambda p: (p[1], p[0]))

    async def records(self, room: str | None = None) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(kind, record)`` of everything (or of ``room``), in the order
        and shape of the SQL export: rooms, messages, people, tokens,
        sessions, roles, sanctions, the audit log, rules, invitations,
        reports, invitation links."""
        rooms = [room] if room is not None else await self.room_names()
        with_messages = set(await self._names("seq"))
        for name in rooms:
            if name in with_messages:
                first, last = await self._backend.bounds(name)
                rev = await self._call("get", self._key("rev", name))
                yield "room", {"room": name, "last_id": last, "first_id": first, "last_rev": int(rev or 0)}
        for name in rooms:
            async for record in self._messages(name):
                yield "message", record
        if room is None:
            async for kind, record in self._accounts():
                yield kind, record
        async for kind, record in self._moderation(rooms, room):
            yield kind, record

    async def _messages(self, room: str) -> AsyncIterator[dict[str, Any]]:
        first, last = await self._backend.bounds(room)
        after = first - 1
        while after < last:
            # Ids after `after`, BATCH at most (retention may have left gaps).
            for m in await self._backend.page(room, after, after + BATCH + 1, BATCH):
                yield {
                    "room": room, "id": m.id, "sender": m.sender, "content": m.content, "ts": m.ts,
                    "ref": m.ref, "rev": m.rev, "edited": m.edited, "deleted": m.deleted,
                    "reactions": reactions_text(m) or None, "reply_to": m.reply_to,
                }  # fmt: skip
            after += BATCH

    async def _accounts(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        for person, name, email in sorted(await self.people()):
            yield "person", {"id": person, "email": email, "name": name}
        for digest in await self._names("token"):
            person = await self._call("get", self._key("token", digest))
            if person:
                # Redis keeps a token's person alone (no label, no time).
                yield "token", {"digest": digest, "person": person, "label": "", "created": 0.0}
        for digest in await self._names("session"):
            raw = await self._call("get", self._key("session", digest))
            if raw:
                person, expires = json.loads(raw)
                yield "session", {"digest": digest, "person": person, "expires": expires}

    async def _moderation(
        self, rooms: list[str], room: str | None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        for name in rooms:
            for person, role in sorted((await self._call("hgetall", self._key("roles", name))).items()):
                yield "role", {"room": name, "person": person, "role": role}
        for name in rooms:
            kept = await self._call("hgetall", self._key("sanctions", name))
            for sanction in sorted(
                (json.loads(s) for s in kept.values()), key=lambda s: (s["person"], s["kind"])
            ):
                kind = sanction.pop("kind")  # an export's "type" (its "kind" is the line's)
                yield "sanction", {**sanction, "type": kind}
        for seq, text in enumerate(await self._call("lrange", self._key("audit"), 0, -1), start=1):
            action = Action.from_json(text)
            if room is None or action.room == room:
                yield "audit", {"seq": seq, "room": action.room, "action": text}
        for name in rooms:
            raw = await self._call("get", self._key("rules", name))
            if raw:
                yield "rules", {"room": name, **json.loads(raw)}
        for name in rooms:
            for person in sorted(await self._call("smembers", self._key("invited", name))):
                yield "invitation", {"room": name, "person": person}
        for name in rooms:
            reports = await self._call("hgetall", self._key("reports", name))
            for number in sorted(reports, key=int):
                yield (
                    "report",
                    {"seq": int(number), "room": name, "action": reports[number], "resolved": False},
                )
        for name in rooms:
            links = await self._call("hgetall", self._key("links", name))
            for link in sorted(links):
                text = links[link]
                action = Action.from_json(text)
                yield (
                    "link",
                    {"room": name, "id": link, "actor": action.actor, "until": action.until, "action": text},
                )

    async def close(self) -> None:
        await self._backend.close()
        await self._redis.aclose()
