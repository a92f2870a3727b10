"""The shared backend: many Chatzilla processes behaving as one chat, through Redis.

Messages: one Redis Stream per room. A Lua script takes the room's next id
from a counter (``INCR``), checks the sender's ``ref`` for a retry, and
``XADD``s the message under the stream id ``0-<id>`` (never trimmed there),
all atomically, so ids are strictly increasing per room whichever process
appends. A message is acknowledged once Redis has it. Every process reads the
streams of the rooms it has people in (``XREAD BLOCK``) and delivers to its
own connections, its own senders' acknowledgements included, so everyone sees
one order; :meth:`RedisBackend.append` returns once its reader has delivered
the message (at most :data:`DELIVERY_WAIT` later). ``docs/architecture.md``
explains the choice.

Presence (:class:`RedisPresence`, which
:class:`~chatzilla.backends.postgres_redis.PostgresRedisBackend` uses too):
per room, a hash of e-mail -> connections (over all processes) and
a sorted set keeping arrival order; each process also keeps a hash of its own
connections and refreshes a key that expires when it stops. Joins and leaves
are Lua scripts; their changes go to the other processes by pub/sub. A person
whose last connection anywhere closes stays in the order set, and in a sorted
set ``away`` of "room<TAB>e-mail" scored by the end of their grace period: a
join within it takes them out again and announces nothing; past it, whichever
process looks first (each does every second, and the one that parked them
when the period ends) announces the leave. A live process that finds
another's key expired parks that process's people the same way, as a process
stopping does with its own: people who come back to a restarted process were
never away.

Redis down: appends and history reads raise
:class:`~chatzilla.backends.base.StorageError` (the hub answers ``unavailable``),
:attr:`RedisBackend.healthy` turns False, and background loops retry until
Redis answers again; after a Redis restart each process re-registers its
people and resumes reading.
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
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig
from redis.typing import KeyT, StreamIdT

from ..chat import (
    Change,
    Message,
    PresenceChange,
    Quote,
    changed,
    parse_quote,
    parse_reactions,
    quote_text,
    reactions_text,
)
from ..privacy import who
from .base import (
    CHANGE,
    DEDUP_WINDOW,
    Announce,
    Deliver,
    OutcomeUnknown,
    SearchUnavailable,
    StorageError,
    deliver_stored,
)
from .networked import NetworkedBackend
from .retention import KEEP_ALL, PRUNE_EVERY, Retention

log = logging.getLogger("chatzilla.redis")

#: Stream entries as the clients (``decode_responses``) return them: (entry id, fields).
_Entries = list[tuple[str, dict[str, str]]]

#: Seconds the sender of an append whose outcome was unknown is kept, to
#: acknowledge the message if it turns up stored after all.
UNKNOWN_KEPT = 60.0


def _may_have_run(exc: BaseException) -> bool:
    """Could the command that failed with ``exc`` have reached Redis, and
    run? Not when no connection could be made (redis-py says "... connecting
    to ..."), nor when Redis answered with an error; yes when the connection
    timed out or broke once the command was on its way (a slow or paused
    Redis runs it when it resumes)."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        return "connecting" not in str(exc).lower()
    return False


def _stream_number(entry_id: str) -> int:
    """The message id in a stream entry id ``0-<id>``."""
    return int(entry_id.split("-")[1])


#: Times a change is tried when the message keeps changing under it.
CHANGE_TRIES = 10

#: Entries a room's change stream keeps (about: trimmed by whole nodes). It
#: carries each change's news to every process's reader, which reads 1000
#: at a time; a catch-up reads the messages themselves. Untrimmed, every
#: edit and reaction kept the message's text and reactions again, for good.
CHANGES_KEPT = 1000

#: How long :meth:`RedisBackend.append` waits, once Redis has a message, for
#: this process's stream reader to deliver it, in seconds. Past it (the
#: reader is behind, or reconnecting) it returns all the same: the message is
#: stored, and delivered (and acknowledged) when the reader catches up.
DELIVERY_WAIT = 5.0
#: How often a process proves it is alive, and how long before it counts as dead.
HEARTBEAT = 1.0
NODE_TTL = 3.0

# KEYS: seq, stream, refkey, active (sorted set: each room by the time of
# its newest message). ARGV: sender, content, ts, ref, origin, window,
# reply_to ('0': none), quote (chat.quote_text: what the reply shows of its
# original then, for the readers of every process to deliver it with), room.
# The stream is never trimmed here: retention (_PRUNE) removes old entries on purpose.
# Returns {duplicate (0/1), "id ts"}.
_APPEND = """
if ARGV[4] ~= '' then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {1, prior} end
end
local id = redis.call('INCR', KEYS[1])
local f = {'s', ARGV[1], 'c', ARGV[2], 't', ARGV[3], 'r', ARGV[4], 'o', ARGV[5]}
if ARGV[7] ~= '0' then
  table.insert(f, 'p')
  table.insert(f, ARGV[7])
  table.insert(f, 'q')
  table.insert(f, ARGV[8])
end
redis.call('XADD', KEYS[2], '0-' .. id, unpack(f))
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[9])
local stamp = id .. ' ' .. ARGV[3]
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], stamp, 'EX', ARGV[6]) end
return {0, stamp}
"""

# KEYS: stream, changes (hash: id -> the message's changed state, JSON),
# rev (the room's change counter), revs (sorted set: id by its latest
# change), change stream. ARGV: id, the change id the new state was
# computed from (chat.changed, by the backend), content, edited ('' for
# none), deleted ('0'/'1'), reactions (JSON, '' for none), entries the change
# stream keeps. Sets the new
# state as the room's next change id, unless the message changed meanwhile,
# and appends it to the change stream, which every process reads. Returns
# {status (0: no such message, 1: set, 2: changed meanwhile), rev}.
_CHANGE = """
local entry = redis.call('XRANGE', KEYS[1], '0-' .. ARGV[1], '0-' .. ARGV[1])[1]
if not entry then return {0, 0} end
local v = '0'
local state = redis.call('HGET', KEYS[2], ARGV[1])
if state then v = cjson.decode(state).v end
if v ~= ARGV[2] then return {2, tonumber(v)} end
local m = {}
local f = entry[2]
for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
local rev = redis.call('INCR', KEYS[3])
v = tostring(rev)
local new = cjson.encode({c = ARGV[3], v = v, e = ARGV[4], d = ARGV[5], x = ARGV[6]})
redis.call('HSET', KEYS[2], ARGV[1], new)
redis.call('ZADD', KEYS[4], rev, ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '0-' .. v, 'i', ARGV[1], 's', m.s, 'c', ARGV[3],
  't', m.t, 'r', m.r, 'v', v, 'e', ARGV[4], 'd', ARGV[5], 'x', ARGV[6], 'p', m.p or '0')
return {1, rev}
"""

# KEYS: stream, seq, first. ARGV: messages to keep (0: all), the cutoff time
# ('' for none). Retention for one room: the lowest id kept is found by
# bisection over the stream (times grow with ids), everything below it goes
# (XTRIM MINID) and `first` remembers it. Returns how many were removed.
_PRUNE = """
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(redis.call('GET', KEYS[3]) or '1')
local keep = first
local n = tonumber(ARGV[1])
if n > 0 and last - n + 1 > keep then keep = last - n + 1 end
if ARGV[2] ~= '' then
  local cutoff = tonumber(ARGV[2])
  local lo, hi = keep, last + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('XRANGE', KEYS[1], '0-' .. mid, '+', 'COUNT', 1)[1]
    local ts = math.huge
    if entry then
      local fields = entry[2]
      for i = 1, #fields, 2 do
        if fields[i] == 't' then ts = tonumber(fields[i + 1]) end
      end
    end
    if ts < cutoff then lo = mid + 1 else hi = mid end
  end
  keep = lo
end
if keep <= first then return 0 end
local removed = redis.call('XTRIM', KEYS[1], 'MINID', '0-' .. keep)
redis.call('SET', KEYS[3], keep)
return removed
"""

# KEYS: count, order, arrivals, node members, nodes, version, away. ARGV:
# email, field, node, n. Adds n connections of email; returns {1 if that made
# them present (2 if they were back within their grace period: in away and
# still in order, present all along), the room's presence version,
# participants...}.
_ENTER = """
redis.call('HINCRBY', KEYS[4], ARGV[2], ARGV[4])
redis.call('SADD', KEYS[5], ARGV[3])
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[4])
local first = 0
if c == tonumber(ARGV[4]) then
  local back = redis.call('ZREM', KEYS[7], ARGV[2]) == 1 and redis.call('ZSCORE', KEYS[2], ARGV[1])
  if back then
    first = 2
  else
    redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
    redis.call('INCR', KEYS[6])
    first = 1
  end
end
return {first, tonumber(redis.call('GET', KEYS[6]) or '0'), redis.call('ZRANGE', KEYS[2], 0, -1)}
"""

# KEYS: count, order, node members, version, away. ARGV: email, field, the end
# of the grace period ('' to leave at once). Returns {left (0/1), count,
# version, away (0/1)}: the last connection gone, the e-mail leaves, or stays
# in order and goes into away until the end of its grace period.
_LEAVE = """
local mine = redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
if mine <= 0 then redis.call('HDEL', KEYS[3], ARGV[2]) end
if mine < 0 then return {0, redis.call('ZCARD', KEYS[2]), 0, 0} end
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if ARGV[3] ~= '' then
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
    return {0, redis.call('ZCARD', KEYS[2]), 0, 1}
  end
  redis.call('ZREM', KEYS[5], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {1, redis.call('ZCARD', KEYS[2]), redis.call('INCR', KEYS[4]), 0}
end
return {0, redis.call('ZCARD', KEYS[2]), 0, 0}
"""

# KEYS: dead node's members, nodes, dead node's alive key, away. ARGV: dead
# node, key prefix, the end of the grace period. Removes a dead (or
# stopping) process's connections; the people left with none go into away.
# Keys of rooms are built here: fine outside Redis Cluster.
_REAP = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local fields = redis.call('HGETALL', KEYS[1])
local parked = 0
for i = 1, #fields, 2 do
  local tab = string.find(fields[i], '\\t', 1, true)
  local room, email = string.sub(fields[i], 1, tab - 1), string.sub(fields[i], tab + 1)
  local count = ARGV[2] .. ':count:' .. room
  if redis.call('HINCRBY', count, email, -tonumber(fields[i + 1])) <= 0 then
    redis.call('HDEL', count, email)
    redis.call('ZADD', KEYS[4], ARGV[3], fields[i])
    parked = parked + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return parked
"""

# KEYS: away. ARGV: now, key prefix. Everyone in away whose grace period
# ended by now, and who has no connection, leaves; returns {room, email,
# count, version, ...} for each.
_EXPIRE = """
local left = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('ZREM', KEYS[1], member)
  local tab = string.find(member, '\\t', 1, true)
  local room, email = string.sub(member, 1, tab - 1), string.sub(member, tab + 1)
  local order = ARGV[2] .. ':order:' .. room
  local count = tonumber(redis.call('HGET', ARGV[2] .. ':count:' .. room, email) or '0')
  if count <= 0 and redis.call('ZREM', order, email) == 1 then
    table.insert(left, room)
    table.insert(left, email)
    table.insert(left, redis.call('ZCARD', order))
    table.insert(left, redis.call('INCR', ARGV[2] .. ':pver:' .. room))
  end
end
return left
"""


def _no_maintenance() -> MaintNotificationsConfig:
    """Maintenance notifications off (they are for Redis Cloud/Enterprise).
    redis-py 8.1's pool skips its check of a pooled connection (data waiting,
    or closed by the server) while they are on or "auto", its default: after
    a Redis restart it then hands out a connection to the old server, and the
    command fails at once ("Connection closed by server", no retry): a join
    right after Redis came back was refused while /healthz said ok."""
    return MaintNotificationsConfig(enabled=False)


def client(url: str) -> aioredis.Redis:
    """A client of the Redis at ``url`` for commands and pub/sub: a command
    not answered in 2 s fails (Redis is then unavailable). A pooled
    connection that the server closed (it restarted) is replaced before use."""
    # decode_responses: every reply is str (redis-py's annotations say
    # bytes | str whatever the client, hence the casts of its replies).
    return aioredis.Redis.from_url(
        url,
        socket_timeout=2.0,
        decode_responses=True,
        socket_connect_timeout=1.0,
        health_check_interval=0,
        maint_notifications_config=_no_maintenance(),
    )


def key_part(text: str) -> str:
    """``text`` made safe to join with ``:`` into a key: ``%`` and ``:``
    percent-encoded, so that no two (sender, ref) pairs share a key
    (``a@x.com`` with ref ``y:r1`` against ``a@x.com:y`` with ``r1``).
    Room names need none: they hold neither character."""
    return text.replace("%", "%25").replace(":", "%3A")


class RedisPresence(NetworkedBackend):
    """Presence over every process sharing the Redis at ``url``: who is in
    each room, joins and leaves told to every process, the grace period,
    and the people of a process that stopped or died. A
    :class:`~chatzilla.backends.base.Backend` but for messages: the
    backends that keep messages (:class:`RedisBackend`, and
    :class:`~chatzilla.backends.postgres_redis.PostgresRedisBackend`) add them.

    Every key starts with ``prefix`` (so tests and deployments can share a
    server). ``node`` names this process (unique by default). ``grace`` is
    the presence grace period, in seconds.
    """

    service = "Redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat: float = HEARTBEAT,
        node_ttl: float = NODE_TTL,
        grace: float = 0.0,
    ) -> None:
        super().__init__(node, grace)
        self._prefix = prefix
        self._clock = clock
        self._heartbeat = heartbeat
        self._node_ttl = node_ttl
        self._redis = client(url)
        self._enter_script = self._redis.register_script(_ENTER)
        self._leave_script = self._redis.register_script(_LEAVE)
        self._reap_script = self._redis.register_script(_REAP)
        self._expire_script = self._redis.register_script(_EXPIRE)
        self._retry_leaves: list[tuple[str, str, bool]] = []
        # Fields of the people whose last connection closed here within a
        # grace period: on a clean stop, their grace starts again.
        self._parked: set[str] = set()
        # Joins, leaves and re-registration each read or change this
        # process's counts in Redis and in _local together: one at a time.
        self._presence_lock = asyncio.Lock()

    # -- keys ----------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    @property
    def _channel(self) -> str:
        return self._key("presence")

    # -- lifecycle -------------------------------------------------------------

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        for loop in (self._presence_loop, self._heartbeat_loop):
            self._spawn(loop())

    # What a subclass that keeps messages does as presence changes.

    async def _follow(self, room: str) -> None:
        """Someone here is joining ``room`` (nobody here was in it)."""

    async def _resumed(self) -> None:
        """This process's people were registered again (after a Redis restart)."""

    def _beat(self) -> None:
        """Once a heartbeat, Redis answering."""

    async def _closing(self) -> None:
        """The backend closes: every pending wait ends."""

    async def close(self) -> None:
        """Finish pending leaves, forget this process in Redis, stop the loops."""
        if self._closed:
            return
        await self._finish_leaves()
        self._closed = True
        await self._closing()
        # Each loop also ends at its next turn once closed: a cancellation
        # can come out of a redis-py call as a Redis error (likely its socket
        # timeout firing at the same moment, which Python 3.11's
        # asyncio.timeout turns into TimeoutError), which a loop takes for a
        # failure and retries. Seen under load in bench/scale.py: a process
        # stuck in close for good, its heartbeat loop still beating.
        await self._stop_tasks()
        with contextlib.suppress(RedisError, OSError):
            if self._parked:
                # As on Postgres: the people whose connections this process
                # closed on the way out (or just before) stay present for a
                # grace period from now, not from when their connection
                # closed (a busy stop took most of it), so pages that come
                # back to another process were never away. XX: not those
                # back already; GT: never shortened.
                end = float(self._grace_ends())
                await self._redis.zadd(self._key("away"), dict.fromkeys(self._parked, end), xx=True, gt=True)
            await self._redis.delete(self._key("node", self.node, "alive"))
            await self._reap(self.node)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # -- presence --------------------------------------------------------------

    def _presence_keys(self, room: str) -> tuple[str, str, str]:
        return self._key("count", room), self._key("order", room), self._key("pver", room)

    @staticmethod
    def _field(room: str, email: str) -> str:
        """This process's members hash field for one person in one room."""
        return f"{room}\t{email}"

    async def _enter_redis(self, room: str, email: str, n: int) -> tuple[int, int, list[str]]:
        """Count ``n`` more connections of ``email`` in ``room``, for this
        process: (1 if that made them present, 2 if they came back within
        their grace period, else 0; the presence version; the participants)."""
        count, order, version = self._presence_keys(room)
        return await self._enter_script(
            keys=[
                count,
                order,
                self._key("arrivals"),
                self._key("node", self.node, "members"),
                self._key("nodes"),
                version,
                self._key("away"),
            ],
            args=[email, self._field(room, email), self.node, n],
        )

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        async with self._presence_lock:
            try:
                if room not in self._local:
                    await self._follow(room)
                first, now, participants = await self._enter_redis(room, email, 1)
            except (RedisError, OSError) as exc:
                self._failed("join", exc)
                if room not in self._local:
                    self._unfollow(room)
                raise StorageError("presence could not be recorded") from None
            self._count_in(room, email)
        self._healthy = True
        if first == 1:
            self._publish_and_announce(room, PresenceChange("join", email, len(participants), now), key)
        elif first == 2:
            log.info("back %s (room %s, within the grace period)", who(email, log), room)
        return participants, now

    def _left(self, room: str, email: str, key: object, at_once: bool) -> None:
        self._spawn_leave(self._leave_now(room, email, key, at_once))

    def _grace_ends(self) -> str:
        """The end of a grace period starting now, as the scripts take it."""
        return repr(self._clock() + self._grace)

    async def _leave_now(self, room: str, email: str, key: object, at_once: bool) -> None:
        count, order, version = self._presence_keys(room)
        at_once = at_once or self._grace <= 0
        try:
            async with self._presence_lock:
                last, remaining, now, away = await self._leave_script(
                    keys=[count, order, self._key("node", self.node, "members"), version, self._key("away")],
                    args=[email, self._field(room, email), "" if at_once else self._grace_ends()],
                )
        except (RedisError, OSError) as exc:
            self._failed("leave", exc)
            self._retry_leaves.append((room, email, at_once))
            return
        if last:
            self._publish_and_announce(room, PresenceChange("leave", email, remaining, now), key)
        if away:
            # Said at the end of the grace period, if still away then.
            self._parked.add(self._field(room, email))
            self._spawn(self._expire_after(self._grace, self._field(room, email)))

    async def _expire_after(self, seconds: float, parked: str) -> None:
        await asyncio.sleep(seconds)
        self._parked.discard(parked)
        with contextlib.suppress(RedisError, OSError):
            await self._expire()

    async def _expire(self, here: bool = True) -> None:
        """Announce the leaves of everyone whose grace period is over (to
        the other processes only, unless ``here``)."""
        left = await self._expire_script(keys=[self._key("away")], args=[repr(self._clock()), self._prefix])
        for i in range(0, len(left), 4):
            room, change = left[i], PresenceChange("leave", left[i + 1], int(left[i + 2]), int(left[i + 3]))
            if here and not self._connected_here(room, change.email):
                self._publish_and_announce(room, change, None)
            else:  # not here, or someone connected here (see _presence_loop)
                await self._publish(self._event(self.node, room, change))

    def _publish_and_announce(self, room: str, change: PresenceChange, origin: object) -> None:
        if self._announce is not None:
            self._announce(room, change, origin)
        self._spawn(self._publish(self._event(self.node, room, change)))

    @staticmethod
    def _event(node: str, room: str, change: PresenceChange) -> str:
        """The pub/sub message telling the other processes of ``change``."""
        return json.dumps(
            {
                "node": node,
                "room": room,
                "event": change.event,
                "email": change.email,
                "count": change.count,
                "version": change.version,
            }
        )

    async def _publish(self, event: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.publish(self._channel, event)

    async def _presence_loop(self) -> None:
        """Announce presence changes made by other processes."""
        while not self._closed:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                async for item in pubsub.listen():
                    event = json.loads(item["data"])
                    if event["node"] == self.node or self._announce is None:
                        continue
                    if event["event"] == "leave" and self._connected_here(event["room"], event["email"]):
                        # Someone connected here, whom another process took
                        # for gone while this one was stalled (paused,
                        # swapped out): they never left for anyone here, and
                        # _register_local puts them back for the others.
                        continue
                    self._announce(
                        event["room"],
                        PresenceChange(event["event"], event["email"], event["count"], event["version"]),
                        None,
                    )
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._failed("presence", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _heartbeat_loop(self) -> None:
        """Keep this process alive in Redis, and remove processes that died."""
        while not self._closed:
            try:
                alive_before = await self._redis.set(
                    self._key("node", self.node, "alive"), "1", px=int(self._node_ttl * 1000), get=True
                )
                if alive_before is None:
                    async with self._presence_lock:
                        await self._register_local()
                # Taken as a whole: a leave that fails again goes on the new list.
                retry, self._retry_leaves = self._retry_leaves, []
                for room, email, at_once in retry:
                    await self._leave_now(room, email, None, at_once)
                await self._reap_dead()
                await self._expire()
                self._beat()
                self._healthy = True
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._failed("heartbeat", exc)
            await asyncio.sleep(self._heartbeat)

    async def _register_local(self) -> None:
        """(Re)write this process's people: on start, and after Redis lost
        them (a restart) or another process reaped us (we were stalled)."""
        members = self._key("node", self.node, "members")
        known = await self._redis.hgetall(members)
        for room, emails in self._local.items():
            for email, n in emails.items():
                missing = n - int(known.get(self._field(room, email), 0))
                if missing <= 0:
                    continue
                first, now, participants = await self._enter_redis(room, email, missing)
                if first == 1:
                    # For the other processes only: here they never left.
                    change = PresenceChange("join", email, len(participants), now)
                    self._spawn(self._publish(self._event(self.node, room, change)))
        if self._local:
            await self._resumed()

    async def _reap_dead(self) -> None:
        for node in cast(set[str], await self._redis.smembers(self._key("nodes"))):
            if node != self.node and not await self._redis.exists(self._key("node", node, "alive")):
                await self._reap(node)

    async def _reap(self, node: str) -> None:
        """Remove ``node``'s connections (unless it is alive): the people it
        leaves with none have their grace period from now."""
        parked = await self._reap_script(
            keys=[
                self._key("node", node, "members"),
                self._key("nodes"),
                self._key("node", node, "alive"),
                self._key("away"),
            ],
            args=[node, self._prefix, self._grace_ends()],
        )
        if parked:
            log.info(
                "process %s stopped; %d of its people are expected back within %gs", node, parked, self._grace
            )
        if parked and self._grace <= 0:
            # Our own people, as this process closes: only the others are
            # told (the hub here is shutting down).
            await self._expire(here=node != self.node)


class RedisBackend(RedisPresence):
    """A :class:`~chatzilla.backends.base.Backend` shared through the Redis at
    ``url``: :class:`RedisPresence`, and the messages in streams.
    ``retention`` says what old messages are removed.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        heartbeat: float = HEARTBEAT,
        node_ttl: float = NODE_TTL,
        grace: float = 0.0,
        retention: Retention = KEEP_ALL,
    ) -> None:
        super().__init__(
            url, prefix, node=node, clock=clock, heartbeat=heartbeat, node_ttl=node_ttl, grace=grace
        )
        self._retention = retention
        # XREAD BLOCK holds its connection, so the reader has its own.
        self._reader = aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            single_connection_client=True,
            decode_responses=True,
            socket_connect_timeout=1.0,
            health_check_interval=0,
            maint_notifications_config=_no_maintenance(),
        )
        self._append_script = self._redis.register_script(_APPEND)
        self._prune_script = self._redis.register_script(_PRUNE)
        self._change_script = self._redis.register_script(_CHANGE)
        self._last_read: dict[str, str] = {}  # room -> last stream id delivered
        self._last_change: dict[str, str] = {}  # room -> last change stream id delivered
        self._reader_id: int | None = None
        self._resets_unchecked = False  # Redis may have restarted: see _check_resets
        self._rooms_changed = asyncio.Event()
        self._tokens = itertools.count(1)
        # token -> (room, sending connection, set once the reader delivered it)
        self._origins: dict[str, tuple[str, object, asyncio.Future[None]]] = {}
        # Tokens of appends whose outcome was unknown -> since when (monotonic).
        self._unknown: dict[str, float] = {}
        # Set (and replaced) each time the reader has delivered a batch.
        self._progress = asyncio.Event()

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        self._spawn(self._read_loop())
        if not self._retention.keeps_all:
            self._spawn(self._prune_loop())

    # -- retention -------------------------------------------------------------

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except (RedisError, OSError) as exc:
                self._failed("retention", exc)
            await asyncio.sleep(PRUNE_EVERY)

    async def prune(self) -> int:
        """Remove what retention no longer keeps, in every room (whichever
        process does it first: removing twice removes nothing more);
        returns how many entries were removed."""
        days, keep = self._retention.days, self._retention.messages
        cutoff = repr(self._clock() - days * 86400.0) if days else ""
        removed = 0
        seq = self._key("seq", "")
        async for key in self._redis.scan_iter(match=seq + "*", count=1000):
            room = key[len(seq) :]
            removed += await self._prune_script(
                keys=[self._key("stream", room), key, self._key("first", room)], args=[keep, cutoff]
            )
        if removed:
            log.info("removed %d messages past their retention", removed)
        return removed

    async def bounds(self, room: str) -> tuple[int, int]:
        try:
            first, last = await self._redis.mget(self._key("first", room), self._key("seq", room))
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        return int(first or 1), int(last or 0)

    async def active(self, limit: int) -> list[tuple[str, float]]:
        try:
            rows = cast(
                list[tuple[str, float]],
                await self._redis.zrevrange(self._key("active"), 0, limit - 1, withscores=True),
            )
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("the rooms could not be read") from None
        return [(room, float(ts)) for room, ts in rows]

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
        token = f"{self.node}#{next(self._tokens)}"
        delivered = asyncio.get_running_loop().create_future()
        self._origins[token] = (room, origin, delivered)
        ts = self._clock()
        refkey = (
            self._key("ref", room, key_part(sender), key_part(ref))
            if ref is not None
            else self._key("ref", "-")
        )
        try:
            duplicate, stamp = await self._append_script(
                keys=[self._key("seq", room), self._key("stream", room), refkey, self._key("active")],
                args=[
                    sender,
                    content,
                    repr(ts),
                    ref or "",
                    token,
                    int(DEDUP_WINDOW),
                    reply_to,
                    quote_text(quote),
                    room,
                ],
            )
        except (RedisError, OSError) as exc:
            self._failed("append", exc)
            if _may_have_run(exc):
                # Its token stays (for UNKNOWN_KEPT seconds): stored after
                # all, the reader delivers it as its sender's `sent`.
                self._unknown[token] = time.monotonic()
                raise OutcomeUnknown("the message may or may not have been stored") from None
            self._origins.pop(token, None)
            raise StorageError("the message could not be stored") from None
        self._healthy = True
        message_id, stamp_ts = stamp.split(" ")
        if duplicate:
            self._origins.pop(token, None)
            # Acknowledged again only once the reader has delivered up to it
            # here: the acknowledgement must not overtake the messages
            # before it (nor its own late delivery, after an unknown outcome).
            await self._read_past(room, int(message_id))
            return Message(int(message_id), sender, content, float(stamp_ts), ref), True
        # Delivered (and acknowledged to `origin`) by the stream reader, in
        # the stream's order: wait for it, as the Backend contract says,
        # unless nobody here reads the room (as _stop_waiting lets go once
        # nobody does): the reader never will.
        if room not in self._last_read:
            self._origins.pop(token, None)
        else:
            await asyncio.wait([delivered], timeout=DELIVERY_WAIT)
        return Message(int(message_id), sender, content, ts, ref, reply_to=reply_to), False

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        high = f"(0-{before}" if before is not None else "+"
        low = f"(0-{after}" if after is not None else "-"
        try:
            entries = cast(
                _Entries, await self._redis.xrevrange(self._key("stream", room), high, low, count=limit)
            )
            messages = [self._message(entry_id, fields) for entry_id, fields in reversed(entries)]
            if messages:
                states = cast(
                    list[str | None],
                    await self._redis.hmget(self._key("chg", room), [m.id for m in messages]),
                )
                messages = [self._as_changed(m, state) for m, state in zip(messages, states, strict=True)]
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        self._healthy = True
        return messages

    @staticmethod
    def _message(entry_id: str, fields: dict[str, str], quoted: bool = False) -> Message:
        """A stream entry as a message; ``quoted``: with the quote its
        sender's process took (for its live delivery: reads take the
        original as it is then)."""
        return Message(
            int(entry_id.split("-")[1]),
            fields["s"],
            fields["c"],
            float(fields["t"]),
            fields["r"] or None,
            reply_to=int(fields.get("p") or 0),
            quote=parse_quote(fields.get("q")) if quoted else None,
        )

    @staticmethod
    def _as_changed(message: Message, state: str | None) -> Message:
        """``message`` with its changed state (the JSON of _CHANGE), if any."""
        if state is None:
            return message
        fields = json.loads(state)
        return dataclasses.replace(
            message,
            content=fields["c"],
            rev=int(fields["v"]),
            edited=float(fields["e"]) if fields["e"] else None,
            deleted=fields["d"] == "1",
            reactions=parse_reactions(fields.get("x")),
        )

    @staticmethod
    def _changed_message(fields: dict[str, str]) -> Message:
        """A message's state as a change stream entry (or _CHANGE) holds it."""
        return Message(
            int(fields["i"]),
            fields["s"],
            fields["c"],
            float(fields["t"]),
            fields["r"] or None,
            int(fields["v"]),
            float(fields["e"]) if fields["e"] else None,
            fields["d"] == "1",
            parse_reactions(fields.get("x")),
            int(fields.get("p") or 0),
        )

    async def get(self, room: str, message_id: int) -> Message | None:
        try:
            found = await self._by_ids(room, [message_id])
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        return found[0] if found else None

    async def get_many(self, room: str, ids: list[int]) -> list[Message]:
        try:
            found = await self._by_ids(room, ids)
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        self._healthy = True
        return found

    async def _by_ids(self, room: str, ids: list[int]) -> list[Message]:
        """The messages of ``room`` with these ids, as they are now, in that
        order; those the stream no longer has (retention) left out."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for message_id in ids:
                pipe.xrange(self._key("stream", room), f"0-{message_id}", f"0-{message_id}")
            if ids:
                pipe.hmget(self._key("chg", room), ids)
            replies = await pipe.execute()
        found = []
        for message_id, entries, state in zip(ids, replies, replies[-1] if ids else (), strict=False):
            if entries:
                entry_id, fields = entries[0]
                found.append(self._as_changed(self._message(entry_id, fields), state))
            else:
                log.debug("message %d of room %s changed, then removed by retention", message_id, room)
        return found

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        # The new state is computed here (chat.changed, every backend's
        # rule) and set only if the message did not change meanwhile.
        try:
            for _ in range(CHANGE_TRIES):
                message = await self.get(room, message_id)
                if message is None:
                    return None, False
                try:
                    after = changed(message, change, message.rev + 1, self._clock())
                except ValueError:
                    return message, False
                if after is None:
                    return message, False
                status, rev = await self._change_script(
                    keys=[
                        self._key("stream", room),
                        self._key("chg", room),
                        self._key("rev", room),
                        self._key("revs", room),
                        self._key("cstream", room),
                    ],
                    args=[
                        message_id,
                        str(message.rev),
                        after.content,
                        repr(after.edited) if after.edited is not None else "",
                        "1" if after.deleted else "0",
                        reactions_text(after),
                        CHANGES_KEPT,
                    ],
                )
                if status == 0:
                    return None, False
                if status == 1:
                    # Delivered here (and in every process) by the reader,
                    # from the change stream.
                    self._healthy = True
                    return dataclasses.replace(after, rev=int(rev)), True
        except (RedisError, OSError) as exc:
            self._failed("change", exc)
            raise StorageError("the change could not be stored") from None
        raise StorageError("the message kept changing; try again")

    async def search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        """Redis streams have no full-text index, and scanning a room's
        stream per search would cost the whole room: refused."""
        raise SearchUnavailable("no full-text search in Redis")

    async def changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        revs = self._key("revs", room)
        try:
            # The latest id first: changes listed past it are news all the same.
            last = await self._redis.get(self._key("rev", room))
            found: list[Message] = []
            while len(found) < limit:
                want = limit - len(found)
                listed = cast(
                    list[tuple[str, float]],
                    await self._redis.zrangebyscore(
                        revs, f"({after}", "+inf", start=0, num=want, withscores=True
                    ),
                )
                ids = [int(i) for i, _ in listed]
                kept = await self._by_ids(room, ids)
                found += kept
                # Retention removed these messages (their stream entries):
                # their change records go too, or every catch-up from below
                # them would read them again, and a page of them alone
                # would hide the changes after it.
                if gone := set(ids) - {m.id for m in kept}:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.zrem(revs, *gone)
                        pipe.hdel(self._key("chg", room), *gone)
                        await pipe.execute()
                if len(ids) < want:
                    break
                after = int(listed[-1][1])
        except (RedisError, OSError) as exc:
            self._failed("history", exc)
            raise StorageError("history could not be read") from None
        self._healthy = True
        return found, int(last or 0)

    async def _newest_id(self, client: aioredis.Redis, room: str, stream: str = "stream") -> str:
        """The id of the last entry of ``room``'s stream (or its change
        stream: ``stream`` "cstream"), "0-0" if none."""
        newest = cast(_Entries, await client.xrevrange(self._key(stream, room), "+", "-", count=1))
        return newest[0][0] if newest else "0-0"

    async def _follow(self, room: str) -> None:
        """Start reading ``room``'s streams after their current last entries."""
        self._last_read.setdefault(room, await self._newest_id(self._redis, room))
        self._last_change.setdefault(room, await self._newest_id(self._redis, room, "cstream"))
        await self._wake_reader()

    def _unfollow(self, room: str) -> None:
        self._last_read.pop(room, None)  # stop reading a room nobody here is in
        self._last_change.pop(room, None)
        self._stop_waiting(room)

    async def _resumed(self) -> None:
        # The reader checks for itself: the checks need its connection, which
        # its XREAD BLOCK holds a second at a time, so from here each would
        # wait for a block to end, two a room, and the heartbeat with them,
        # past the TTL of this process's key: the other processes took it
        # for dead and dropped its people.
        self._resets_unchecked = True
        await self._wake_reader()

    def _beat(self) -> None:
        self._forget_unknown(time.monotonic() - UNKNOWN_KEPT)

    async def _closing(self) -> None:
        self._stop_waiting()

    async def close(self) -> None:
        await super().close()
        with contextlib.suppress(RedisError, OSError):
            await self._reader.aclose()

    async def _wake_reader(self) -> None:
        self._rooms_changed.set()
        if self._reader_id is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.client_unblock(self._reader_id)

    async def _read_loop(self) -> None:
        """Deliver every new entry of the followed rooms' streams, in order."""
        backoff = 0.1
        while not self._closed:
            try:
                if self._reader_id is None:
                    self._reader_id = await self._reader.client_id()
                    self._resets_unchecked = True
                if self._resets_unchecked:
                    await self._check_resets()
                    self._resets_unchecked = False
                self._rooms_changed.clear()
                rooms: dict[KeyT, StreamIdT] = {
                    self._key("stream", room): last for room, last in self._last_read.items()
                }
                rooms.update(
                    (self._key("cstream", room), last)
                    for room, last in self._last_change.items()
                    if room in self._last_read
                )
                if not rooms:
                    await self._rooms_changed.wait()
                    continue
                # A room followed just before this call is read from the
                # next one: the block is short so that waits at most 1 s.
                replies = cast(
                    list[tuple[str, _Entries]], await self._reader.xread(rooms, count=1000, block=1000)
                )
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._reader_id = None
                self._failed("read", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            prefix = len(self._key("stream", ""))
            changes = self._key("cstream", "")
            for stream, entries in replies or ():
                if stream.startswith(changes):
                    self._deliver_changes(stream[len(changes) :], entries)
                    continue
                room = stream[prefix:]
                if room not in self._last_read:
                    self._stop_waiting(room)
                    continue  # nobody here any more
                for entry_id, fields in entries:
                    self._last_read[room] = entry_id
                    token = fields.get("o", "")
                    self._unknown.pop(token, None)
                    _, origin, delivered = self._origins.pop(token, (room, None, None))
                    try:
                        message = self._message(entry_id, fields, quoted=True)
                    except (KeyError, ValueError, IndexError, TypeError):
                        # Not written by us: skipped, the reader goes on.
                        log.error("skipped malformed entry %s of room %s", entry_id, room)
                        continue
                    finally:
                        if delivered is not None and not delivered.done():
                            delivered.set_result(None)
                    deliver_stored(self._deliver, room, message, origin)
            self._read_some()

    def _deliver_changes(self, room: str, entries: _Entries) -> None:
        """Deliver the entries of ``room``'s change stream (if still read here)."""
        if room not in self._last_read:
            return
        for entry_id, fields in entries:
            self._last_change[room] = entry_id
            try:
                message = self._changed_message(fields)
            except (KeyError, ValueError):
                log.error("skipped malformed change %s of room %s", entry_id, room)
                continue
            deliver_stored(self._deliver, room, message, CHANGE)

    async def _read_past(self, room: str, message_id: int) -> None:
        """Wait (at most DELIVERY_WAIT) until the reader has delivered
        ``room``'s stream up to ``message_id``, if this process reads it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_WAIT
        while room in self._last_read and _stream_number(self._last_read[room]) < message_id:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    def _read_some(self) -> None:
        """The reader delivered a batch: wake whoever waits in _read_past."""
        self._progress.set()
        self._progress = asyncio.Event()

    def _forget_unknown(self, older_than: float) -> None:
        """Release the tokens of appends whose outcome was unknown, kept that
        long without their entry showing up: never stored after all."""
        for token, since in list(self._unknown.items()):
            if since < older_than:
                del self._unknown[token]
                self._origins.pop(token, None)

    def _stop_waiting(self, room: str | None = None) -> None:
        """Let the appends waiting for delivery in ``room`` (every room: None)
        return: nobody in this process reads it any more."""
        self._read_some()
        for token, (in_room, _, delivered) in list(self._origins.items()):
            if room is None or in_room == room:
                del self._origins[token]
                if not delivered.done():
                    delivered.set_result(None)

    async def _check_resets(self) -> None:
        """After (re)connecting: a stream behind where we read was reset (a Redis
        restart without persistence); read it again from its start."""
        for room, last in list(self._last_read.items()):
            newest_id = await self._newest_id(self._reader, room)
            if int(newest_id.split("-")[1]) < int(last.split("-")[1]):
                log.warning("room %s's stream was reset; reading it from the start", room)
                self._last_read[room] = "0-0"
        for room, last in list(self._last_change.items()):
            newest_id = await self._newest_id(self._reader, room, "cstream")
            if _stream_number(newest_id) < _stream_number(last):
                self._last_change[room] = "0-0"
