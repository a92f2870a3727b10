"""``python -m chatzilla admin`` on Redis: the rooms, the people, and an
export and import in the JSON lines of the SQL storages (see
:mod:`chatzilla.admin`), on the keys the Redis backend, sign-in accounts
and the moderation store keep under the deployment's prefix. A backup
goes between Redis, a SQLite file and a Postgres database either way.

An export reads a key or a page at a time (``SCAN``, stream ranges): the
chat goes on meanwhile, and what it changes during an export may or may
not be in it. An import writes a key at a time; the processes serving
the chat read imported messages of rooms they follow as new ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, cast

from redis.exceptions import RedisError, ResponseError

from .backends.base import StorageError
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


#: KEYS[1] becomes ARGV[1] if that is larger (or KEYS[1] is not set): a
#: room's last id or change id, which running processes may be raising.
_AT_LEAST = """
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > now then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


class RedisImport:
    """Adds an export's rows to the keys of a :class:`RedisDeployment`, as
    the SQL import does: what the keys have already stays, a room's last
    ids become the larger of both. A message goes in at its id only above
    the room's newest (a stream grows at its end): one below it that the
    room lacks is left out and counted in :attr:`left_out`."""

    def __init__(self, redis: RedisDeployment) -> None:
        self._redis = redis
        self._at_least = redis._redis.register_script(_AT_LEAST)
        self._audit: set[str] | None = None
        self.left_out = 0

    async def add(self, kind: str, r: dict[str, Any]) -> None:
        key, call = self._redis._key, self._redis._call
        if kind == "room":
            await self._raise(key("seq", r["room"]), r["last_id"])
            await self._raise(key("rev", r["room"]), r["last_rev"])
            await call("set", key("first", r["room"]), r["first_id"], nx=True)
        elif kind == "message":
            await self._message(r)
        elif kind == "person":
            if await call("set", key("email", r["email"]), r["id"], nx=True):
                await call("hset", key("person", r["id"]), mapping={"email": r["email"], "name": r["name"]})
        elif kind == "token":
            await call("set", key("token", r["digest"]), r["person"], nx=True)
        elif kind == "session":
            ttl = int(r["expires"] - time.time()) + 60
            if ttl > 60:
                await call(
                    "set",
                    key("session", r["digest"]),
                    json.dumps([r["person"], r["expires"]]),
                    ex=ttl,
                    nx=True,
                )
        elif kind == "role":
            if r["role"] == "owner" and not await call("set", key("owner", r["room"]), r["person"], nx=True):
                return  # the room has its owner
            await call("hsetnx", key("roles", r["room"]), r["person"], r["role"])
            await call("sadd", key("moderated"), r["room"])
        elif kind == "sanction":
            sanction = {k: r[k] for k in ("room", "person", "until", "reason", "actor", "ts")}
            text = json.dumps({**sanction, "kind": r["type"]})
            await call("hsetnx", key("sanctions", r["room"]), f"{r['type']}:{r['person']}", text)
            await call("sadd", key("moderated"), r["room"])
        elif kind == "audit":
            if self._audit is None:
                self._audit = set(await call("lrange", key("audit"), 0, -1))
            if r["action"] not in self._audit:
                self._audit.add(r["action"])
                await call("rpush", key("audit"), r["action"])
        elif kind == "rules":
            rules = {"topic": r["topic"], "private": bool(r["private"]), "read_only": bool(r["read_only"])}
            await call("set", key("rules", r["room"]), json.dumps(rules), nx=True)
        elif kind == "invitation":
            await call("sadd", key("invited", r["room"]), r["person"])
        elif kind == "report":
            await self._report(r)
        elif kind == "link":
            await call("hsetnx", key("links", r["room"]), r["id"], r["action"])

    async def _raise(self, name: str, value: int) -> None:
        try:
            await self._at_least(keys=[name], args=[value])
        except (RedisError, OSError) as exc:
            raise StorageError(f"admin: {exc}") from None

    async def _message(self, r: dict[str, Any]) -> None:
        key, call = self._redis._key, self._redis._call
        stream, entry = key("stream", r["room"]), f"0-{r['id']}"
        if await call("xrange", stream, entry, entry):
            return  # kept already
        fields = {
            "s": r["sender"],
            "c": r["content"],
            "t": repr(float(r["ts"])),
            "r": r["ref"] or "",
            "o": "",
        }
        if r.get("reply_to"):
            fields["p"] = str(r["reply_to"])
        try:
            await self._redis._redis.xadd(stream, cast(Any, fields), id=entry)
        except ResponseError:
            self.left_out += 1  # below the room's newest: a stream grows at its end
            return
        if r["rev"]:
            state = {
                "c": r["content"], "v": str(r["rev"]), "e": repr(r["edited"]) if r["edited"] else "",
                "d": "1" if r["deleted"] else "0", "x": r["reactions"] or "",
            }  # fmt: skip
            await call("hset", key("chg", r["room"]), str(r["id"]), json.dumps(state))
            await call("zadd", key("revs", r["room"]), {str(r["id"]): r["rev"]})

    async def _report(self, r: dict[str, Any]) -> None:
        if r["resolved"]:
            return  # Redis keeps the open ones (the audit log has the rest)
        key, call = self._redis._key, self._redis._call
        action = Action.from_json(r["action"])
        if await call("hsetnx", key("reports", r["room"]), str(r["seq"]), r["action"]):
            await call("hsetnx", key("reports-open", r["room"]), f"{action.actor}:{action.message}", r["seq"])
            await call("hincrby", key("reports-by", r["room"]), action.actor, 1)
            await self._raise(key("report-seq"), r["seq"])
