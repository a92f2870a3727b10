"""Postgres and Redis together: Postgres keeps the history, Redis carries
fan-out and presence.

Messages are :class:`~chatzilla.backends.postgres.PostgresStore`'s: appends
grouped into transactions, ids strictly increasing per room whichever process
appends, ``ref`` retries, history, ``since`` and retention, all in Postgres;
a message is acknowledged once committed there. Once committed, each process
publishes its messages, whole and in commit order, on the Redis channel
``PREFIX:messages``; every process delivers the messages of the rooms it has
people in, in id order, from what Redis brought: it reads Postgres only for
a gap (two processes' messages can come out of Redis in another order than
their ids) and after its subscription was lost. Every
:data:`SWEEP_EVERY` seconds each process also reads its rooms' last ids from
Postgres and reads up to what it found the time before, so that a message
whose publication was lost (Redis down, a process killed between its commit
and its publication) reaches everyone within about two sweeps all the same.

Presence is :class:`~chatzilla.backends.redis.RedisPresence`'s, the same as
with Redis alone (grace period, processes that stop or die).

Redis down: messages are still stored and acknowledged (Postgres keeps them),
delivered in this process at once and in the others by the sweep; joins are
refused ``unavailable`` (presence cannot be recorded) and ``/healthz`` says
``degraded``. Postgres down: appends and history reads are ``unavailable``
when nothing was stored, as with Postgres alone; an append whose outcome
was unknown (``outcome_unknown``) and that turns out stored reaches everyone,
but its sender is acknowledged only when it sends it again with the same
``ref`` (the messages' table does not keep which process appended them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from ..chat import Change, Message, parse_quote, quote_text
from .base import Announce, Deliver
from .postgres import ERRORS, PostgresStore
from .redis import HEARTBEAT, NODE_TTL, RedisPresence, client
from .retention import KEEP_ALL, Retention

log = logging.getLogger("chatzilla.postgres_redis")

#: How often each process reads its rooms' last ids from Postgres, in seconds.
SWEEP_EVERY = 1.0


class PostgresRedisBackend(PostgresStore):
    """A :class:`~chatzilla.backends.base.Backend` keeping messages in the
    Postgres at ``database_url`` and sharing them, and presence, through the
    Redis at ``redis_url`` (keys and channels under ``prefix``); see the
    module docstring. Call :meth:`open` (it migrates the schema) before
    :meth:`start`.

    Storage (appends, history, retention) is the inherited
    :class:`~chatzilla.backends.postgres.PostgresStore`'s; presence is
    ``self._presence``'s; this class adds the publication of committed
    messages on Redis and the delivery of what the other processes published.
    """

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        prefix: str,
        *,
        node: str | None = None,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
        heartbeat: float = HEARTBEAT,
        node_ttl: float = NODE_TTL,
        retention: Retention = KEEP_ALL,
    ) -> None:
        super().__init__(database_url, node=node, clock=clock, grace=grace, retention=retention)
        self._presence = RedisPresence(
            redis_url,
            prefix,
            node=self.node,
            clock=clock,
            heartbeat=heartbeat,
            node_ttl=node_ttl,
            grace=grace,
        )
        self._redis = client(redis_url)
        self._channel = f"{prefix}:messages"
        # Committed messages not yet published, in commit order; one task
        # publishes them (so this process's publications keep that order).
        self._outgoing: list[str] = []
        self._publishing: asyncio.Task | None = None
        self._publish_failed = False
        self._subscribed = False
        # Each followed room's last id and change id in Postgres at the previous sweep.
        self._swept: dict[str, tuple[int, int]] = {}
        # A join follows its room and records presence as one step: a failed
        # join must not stop the reading of a room another join just entered.
        self._entering = asyncio.Lock()

    def start(self, deliver: Deliver, announce: Announce) -> None:
        super().start(deliver, announce)
        self._presence.start(deliver, announce)
        self._spawn(self._subscribe_loop())
        self._spawn(self._sweep_loop())

    @property
    def healthy(self) -> bool:
        return super().healthy and self._presence.healthy and self._subscribed

    async def close(self) -> None:
        """Finish queued writes and their publication, then presence
        (this process's people get their grace period); disconnect."""
        await super().close()
        await self._presence.close()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _goodbye(self) -> None:
        if self._publishing is not None:
            await asyncio.wait([self._publishing], timeout=1.0)

    # -- presence --------------------------------------------------------------

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        async with self._entering:
            first = room not in self._local
            if first:
                # Delivered from here on: messages after the room's last id now.
                _, last = await self.bounds(room)
                self._follow_from(room, last)
                await self._follow_changes(room)
            try:
                participants, version = await self._presence.enter(room, email, key)
            except BaseException:  # StorageError, or cancelled: not present here
                if first:
                    self._unfollow(room)
                raise
            self._count_in(room, email)
        return participants, version

    def _left(self, room: str, email: str, key: object, at_once: bool) -> None:
        self._presence.leave(room, email, key, at_once)

    # -- fan-out ---------------------------------------------------------------

    def _committed(self, room: str, message: Message, token: str) -> None:
        self._send(
            {
                "room": room,
                "token": token,
                "id": message.id,
                "sender": message.sender,
                "content": message.content,
                "ts": message.ts,
                "ref": message.ref,
                "reply_to": message.reply_to,
                "quote": quote_text(message.quote),
            }
        )

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        """:meth:`PostgresStore.change`, then its news: read (in the
        change's order) by this process's reader at once, by the others' on
        its publication."""
        message, changed = await super().change(room, message_id, change)
        if changed and message is not None:
            self._changed(room, message.rev)
            self._send({"room": room, "rev": message.rev})
        return message, changed

    def _send(self, event: dict) -> None:
        """Publish ``event`` after those before it (see :meth:`_publish`)."""
        self._outgoing.append(json.dumps(event))
        if self._publishing is None:
            # Not a _spawn task: a clean stop lets it finish (_goodbye).
            self._publishing = asyncio.ensure_future(self._publish())

    async def _publish(self) -> None:
        """Publish what is outgoing, a batch a round trip, until nothing is.
        A batch Redis does not take is dropped: the sweep delivers it."""
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for payload in batch:
                            pipe.publish(self._channel, payload)
                        await pipe.execute()
                    self._publish_failed = False
                except (RedisError, OSError) as exc:
                    if not self._publish_failed:
                        log.warning(
                            "could not publish %d messages on Redis (%s): the other processes read them"
                            " from Postgres within %gs",
                            len(batch),
                            exc,
                            2 * SWEEP_EVERY,
                        )
                    self._publish_failed = True
        finally:
            self._publishing = None

    async def _subscribe_loop(self) -> None:
        """Hear every process's messages; once (re)subscribed, read every
        followed room from Postgres up to its end (what was published
        meanwhile was not heard)."""
        while not self._closed:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if not self._subscribed:
                    self._subscribed = True
                    self._read_everything()
                async for item in pubsub.listen():
                    self._on_published(item["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._subscribed:
                    log.warning("Redis unavailable (messages): %s", exc)
                self._subscribed = False
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _on_published(self, data: str) -> None:
        try:
            event = json.loads(data)
            if "rev" in event:  # a change: read from Postgres in its order
                self._changed(str(event["room"]), int(event["rev"]))
                return
            message = Message(
                int(event["id"]),
                str(event["sender"]),
                str(event["content"]),
                float(event["ts"]),
                event["ref"],
                reply_to=int(event.get("reply_to") or 0),
                quote=parse_quote(event.get("quote")),
            )
            room, token = str(event["room"]), str(event["token"])
        except (ValueError, KeyError, TypeError):
            log.error("skipped a malformed message publication")
            return
        self._notified(room, message.id, token, message)

    async def _sweep_loop(self) -> None:
        """Every :data:`SWEEP_EVERY` seconds, read each followed room's last
        id; read up to what the previous sweep found (committed a sweep ago
        at least: its publication was lost, or is very late)."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            assert self._pool is not None
            try:
                rows = await self._pool.fetch(
                    "SELECT room, last_id, last_rev FROM rooms WHERE room = ANY($1::text[])",
                    list(self._last_read),
                )
            except asyncio.CancelledError:
                raise
            except ERRORS as exc:
                self._failed("sweep", exc)
                continue
            except Exception as exc:  # a bug: /healthz says so, and the sweep goes on
                self._bug("sweep", exc)
                continue
            self._healthy = True
            swept, self._swept = self._swept, {row["room"]: (row["last_id"], row["last_rev"]) for row in rows}
            for room, (last, rev) in swept.items():
                self._known(room, last)
                self._changed(room, rev)
