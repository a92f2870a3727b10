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
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from redis.exceptions import RedisError, ResponseError

from .backends.base import StorageError
from .backends.redis import CHANGES_KEPT, RedisBackend
from .chat import UNREACT, Change, reactions_text
from .moderation import Action, redacted
from .moderation_store import REDIS_AUDIT_KEPT
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
        self._oldest: float | None = None  # the oldest kept entry's time, once full
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
            await self._audit_entry(r["action"])
        elif kind == "rules":
            rules = {"topic": r["topic"], "private": bool(r["private"]), "read_only": bool(r["read_only"])}
            await call("set", key("rules", r["room"]), json.dumps(rules), nx=True)
        elif kind == "invitation":
            await call("sadd", key("invited", r["room"]), r["person"])
        elif kind == "report":
            await self._report(r)
        elif kind == "link":
            await call("hsetnx", key("links", r["room"]), r["id"], r["action"])

    async def _audit_entry(self, action: str) -> None:
        """Add an audit entry (oldest first, as exported) unless the log has
        it. Redis keeps the newest REDIS_AUDIT_KEPT, as the chat does: once
        full, an entry older than its oldest is one it would not keep (and
        importing the same again does not put trimmed ones back as new)."""
        key, call = self._redis._key, self._redis._call
        if self._audit is None:
            kept = await call("lrange", key("audit"), 0, -1)
            self._audit = set(kept)
            self._oldest = json.loads(kept[0])["ts"] if len(kept) >= REDIS_AUDIT_KEPT else None
        ts = json.loads(action)["ts"]
        if action in self._audit or (self._oldest is not None and ts < self._oldest):
            return
        self._audit.add(action)
        if await call("rpush", key("audit"), action) > REDIS_AUDIT_KEPT:
            await call("ltrim", key("audit"), -REDIS_AUDIT_KEPT, -1)
            self._oldest = json.loads(await call("lindex", key("audit"), 0))["ts"]

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
        # The rooms frame's active rooms, by their latest message.
        await call("zadd", key("active"), {r["room"]: float(r["ts"])}, gt=True)
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


#: The sender a forgotten person's messages are left with (as on the SQL storages).
FORGOTTEN = json.dumps({"avatar": "", "id": "", "name": "deleted"}, separators=(",", ":"), sort_keys=True)

# KEYS: stream, chg, rev, revs, change stream. ARGV: FORGOTTEN, entries the
# change stream keeps, then the senders to forget. A stream entry cannot be
# changed in place, so a room with messages of theirs has its stream (and
# its change stream, which holds texts of changes) written anew, at the same
# ids, in one script: nothing is appended meanwhile, and the processes
# reading it go on from the ids they had. Their messages become deleted
# markers from nobody, each a change with a new change id (catch-ups see
# them go); replies to them lose the quote they carried. Returns the ids.
_FORGET = """
local forget = {}
for i = 3, #ARGV do forget[ARGV[i]] = true end
local function fields(entry)
  local m = {}
  local f = entry[2]
  for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
  return m
end
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
local gone, ids = {}, {}
for _, e in ipairs(entries) do
  local m = fields(e)
  if forget[m.s] then
    local id = string.sub(e[1], 3)
    gone[id] = true
    table.insert(ids, id)
  end
end
if #ids == 0 then return {} end
local function rewrite(key, entries, change)
  local last = redis.call('XINFO', 'STREAM', key)
  local last_id
  for i = 1, #last, 2 do if last[i] == 'last-generated-id' then last_id = last[i + 1] end end
  redis.call('DEL', key)
  for _, e in ipairs(entries) do
    local m = fields(e)
    local f = {}
    local ours = (change and gone[m.i]) or (not change and gone[string.sub(e[1], 3)])
    for i = 1, #e[2], 2 do
      local name, value = e[2][i], e[2][i + 1]
      if ours and name == 's' then value = ARGV[1] end
      if ours and (name == 'c' or name == 'x') then value = '' end
      if change and not ours and name == 'x' and value ~= '' then
        -- Their reactions came off (each a change): an older change shows
        -- the reactions as they are now.
        local state = redis.call('HGET', KEYS[2], m.i)
        if state then value = cjson.decode(state).x end
      end
      if not (name == 'q' and m.p and gone[m.p]) then
        table.insert(f, name)
        table.insert(f, value)
      end
    end
    redis.call('XADD', key, e[1], unpack(f))
  end
  if last_id then redis.call('XSETID', key, last_id) end
end
rewrite(KEYS[1], entries, false)
if redis.call('EXISTS', KEYS[5]) == 1 then
  rewrite(KEYS[5], redis.call('XRANGE', KEYS[5], '-', '+'), true)
end
for _, id in ipairs(ids) do
  local e = redis.call('XRANGE', KEYS[1], '0-' .. id, '0-' .. id)[1]
  local m = fields(e)
  local v = tostring(redis.call('INCR', KEYS[3]))
  redis.call('HSET', KEYS[2], id, cjson.encode({c = '', v = v, e = '', d = '1', x = ''}))
  redis.call('ZADD', KEYS[4], v, id)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '0-' .. v, 'i', id, 's', ARGV[1], 'c', '',
    't', m.t, 'r', m.r, 'v', v, 'e', '', 'd', '1', 'x', '', 'p', m.p or '0')
end
return ids
"""


async def forget(redis: RedisDeployment, email: str) -> dict[str, int]:
    """Remove everything about the person of ``email`` from a chat kept in
    Redis, as :func:`chatzilla.admin.forget` does on the SQL storages: their
    messages become "message deleted" markers from nobody (see _FORGET),
    their reactions come off everyone's messages, their sessions, bot
    tokens, sign-in links, roles, sanctions, invitations and invitation
    links go, and the audit log and reports no longer name them. Not one
    transaction: run again, it finishes what a failure left."""
    key, call = redis._key, redis._call
    person = await call("get", key("email", email))
    # Their keys as messages and reactions hold them: their address (from
    # an --auth open time), and each person key of theirs (with the name
    # they had then).
    mine = {email} | (await _keys_of(redis, person) if person else set())
    removed = {"messages": 0, "reactions": 0}
    script = redis._redis.register_script(_FORGET)
    for room in await redis._names("seq"):
        removed["reactions"] += await _unreact(redis, room, mine)
        keys = [key(k, room) for k in ("stream", "chg", "rev", "revs", "cstream")]
        try:
            ids = await script(keys=keys, args=[FORGOTTEN, CHANGES_KEPT, *sorted(mine)])
        except (RedisError, OSError) as exc:
            raise StorageError(f"admin: {exc}") from None
        removed["messages"] += len(ids)
    links = 0
    for digest in await redis._names("link"):
        raw = await call("get", key("link", digest))
        if raw and json.loads(raw).get("email") == email:
            links += await call("delete", key("link", digest))
    removed["links"] = links
    if person is None:
        return removed
    removed["sessions"] = await _drop_where(redis, "session", lambda raw: json.loads(raw)[0] == person)
    removed["bot_tokens"] = await _drop_where(redis, "token", lambda raw: raw == person)
    rooms = await redis.room_names()
    removed["room_roles"] = removed["sanctions"] = removed["invitations"] = removed["invitation links"] = 0
    for room in rooms:
        removed["room_roles"] += await call("hdel", key("roles", room), person)
        if await call("get", key("owner", room)) == person:
            await call("delete", key("owner", room))
        removed["sanctions"] += await call("hdel", key("sanctions", room), f"mute:{person}", f"ban:{person}")
        for field, text in (await call("hgetall", key("sanctions", room))).items():
            given = json.loads(text)
            if given["actor"] == person:  # a sanction they gave stands, given by nobody now
                await call("hset", key("sanctions", room), field, json.dumps({**given, "actor": ""}))
        removed["invitations"] += await call("srem", key("invited", room), person)
        links_kept = await call("hgetall", key("links", room))
        theirs = [i for i, text in links_kept.items() if Action.from_json(text).actor == person]
        if theirs:
            removed["invitation links"] += await call("hdel", key("links", room), *theirs)
        # Their open reports stay open (redacted below: by nobody now);
        # their slots and count go, so no field names them.
        theirs = [f for f in await call("hkeys", key("reports-open", room)) if f.startswith(f"{person}:")]
        if theirs:
            await call("hdel", key("reports-open", room), *theirs)
        await call("hdel", key("reports-by", room), person)
    removed["audit entries redacted"] = await _redact(redis, person, rooms)
    await call("delete", key("person", person), key("email", email))
    removed["people"] = 1
    return removed


async def _keys_of(redis: RedisDeployment, person: str) -> set[str]:
    """Every key of ``person`` in the rooms' messages, as sender or in a
    reaction (a key holds the name they had when they joined)."""
    found: set[str] = set()
    needle = f'"id":"{person}"'
    for room in await redis._names("seq"):
        async for record in redis._messages(room):
            for key in [record["sender"]] + [
                w for _, who in json.loads(record["reactions"] or "[]") for w in who
            ]:
                if needle in key:
                    found.add(key)
    return found


async def _unreact(redis: RedisDeployment, room: str, mine: set[str]) -> int:
    """Take the reactions of ``mine`` (keys) off the room's messages, each a change."""
    taken = 0
    async for record in redis._messages(room):
        if not record["reactions"]:
            continue
        for emoji, people in json.loads(record["reactions"]):
            for who in people:
                if who in mine:
                    _, done = await redis._backend.change(
                        room, record["id"], Change(UNREACT, emoji=emoji, who=who)
                    )
                    taken += done
    return taken


async def _drop_where(redis: RedisDeployment, kind: str, theirs: Callable[[str], bool]) -> int:
    dropped = 0
    for name in await redis._names(kind):
        raw = await redis._call("get", redis._key(kind, name))
        if raw and theirs(raw):
            dropped += await redis._call("delete", redis._key(kind, name))
    return dropped


async def _redact(redis: RedisDeployment, person: str, rooms: list[str]) -> int:
    """The audit list and open reports no longer name ``person``."""
    count = 0
    for index, text in enumerate(await redis._call("lrange", redis._key("audit"), 0, -1)):
        changed = redacted(text, person)
        if changed is not None:
            await redis._call("lset", redis._key("audit"), index, changed)
            count += 1
    for room in rooms:
        for number, text in (await redis._call("hgetall", redis._key("reports", room))).items():
            changed = redacted(text, person)
            if changed is not None:
                await redis._call("hset", redis._key("reports", room), number, changed)
                count += 1
    return count
