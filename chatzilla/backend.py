"""The seam between the chat and where messages and presence are kept.

A backend stores messages, gives them their ids and timestamps, and reports
every newly stored message to the hub through the ``deliver`` callback, which
fans it out to the connections of this process. It also counts who is
present in each room, over every process that shares it, and reports each
presence change through the ``announce`` callback. A person whose last
connection closes stays present for a grace period (``grace`` seconds): one
who comes back within it (a reload, a room switch and back, a restart of the
server) was never away for anyone else. The hub and the
connections never know which backend runs: the in-process
:class:`MemoryBackend`, the durable SQLite one
(:mod:`chatzilla.sqlite_backend`), or the Redis one shared by many processes
(:mod:`chatzilla.redis_backend`).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import time
from collections.abc import Callable
from typing import Protocol

from .chat import Message, PresenceChange, Roster

#: ``deliver(room, message, origin)``: ``origin`` is the opaque token the
#: sender passed to :meth:`Backend.append` (so the hub can acknowledge to the
#: sending connection and skip it), or None when the message came from
#: another process.
Deliver = Callable[[str, Message, object], None]

#: ``announce(room, change, origin)``: someone's first connection entered or
#: last one left a room (``change.event`` is "join" or "leave"); ``origin`` is
#: the key given to :meth:`Backend.enter` or :meth:`Backend.leave`, or None
#: when it happened in another process.
Announce = Callable[[str, PresenceChange, object], None]

log = logging.getLogger("chatzilla.backend")


def deliver_stored(deliver: Deliver | None, room: str, message: Message, origin: object) -> None:
    """Hand a stored message to ``deliver``. A delivery that raises is logged,
    not propagated: the message is stored all the same, and its sender and
    the messages after it (the rest of a batch, of a stream) must still go out."""
    if deliver is None:
        return
    try:
        deliver(room, message, origin)
    except Exception:
        log.exception("could not deliver message %d of room %s", message.id, room)


#: How long a message's ``ref`` identifies it for retries, in seconds: a
#: client that lost an acknowledgement retries well within this.
DEDUP_WINDOW = 600.0


class StorageError(Exception):
    """The backend could not store or read; the message was not accepted."""


class Backend(Protocol):
    """What the hub needs from storage and fan-out."""

    def start(self, deliver: Deliver, announce: Announce) -> None:
        """Begin reporting stored messages and presence changes."""

    @property
    def healthy(self) -> bool:
        """False while the backend cannot store or read (e.g. its server is down)."""

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        """Count connection ``key`` of ``email`` as present in ``room``.

        Returns the room's participants afterwards, in arrival order, each
        once, and the room's presence version then: a change announced later
        with a version at or below it happened before, and is not news to
        this connection. Announces a "join" when it is the e-mail's first
        connection. Raises :class:`StorageError` when presence cannot be
        recorded.
        """

    def leave(self, room: str, email: str, key: object, at_once: bool = False) -> None:
        """Stop counting connection ``key``. When it was the e-mail's last,
        a "leave" is announced after the grace period, unless a connection
        of the e-mail enters the room again within it (then nothing is
        announced at all); ``at_once`` (the person said they leave) skips the
        grace. Never raises; may complete after returning."""

    async def append(
        self, room: str, sender: str, content: str, ref: str | None, origin: object
    ) -> tuple[Message, bool]:
        """Store a message; return it (with id and ``ts``) and ``duplicate``.

        ``duplicate`` is True when ``sender`` already sent ``ref`` to ``room``
        within :data:`DEDUP_WINDOW`: the original message is returned and
        nothing is stored or delivered. Otherwise, when this returns, the
        message is as safe as the backend makes it and has been passed to
        ``deliver``. Raises :class:`StorageError` when it cannot store.
        """

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` of the newest messages with ``after < id < before``
        (either bound may be None), oldest first."""

    async def close(self) -> None:
        """Release what the backend holds; safe to call twice."""


class LocalPresence:
    """Presence counted in this process, for the embedded backends, where
    this process is the whole chat. Announces synchronously (a leave after
    the grace period, from a timer on the running loop). Keeps the two
    callbacks :meth:`start` is given, for the subclass's messages too.

    ``grace`` is the grace period in seconds (0: a leave is announced at once).
    """

    def __init__(self, grace: float = 0.0) -> None:
        self._grace = grace
        self._rosters: dict[str, Roster] = {}
        self._deliver: Deliver | None = None
        self._announce: Announce | None = None
        # (room, e-mail) -> the timer that ends their grace period.
        self._lingering: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def start(self, deliver: Deliver, announce: Announce) -> None:
        self._deliver = deliver
        self._announce = announce

    @property
    def healthy(self) -> bool:
        return True

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        self._stop_lingering(room, email)
        roster = self._rosters.setdefault(room, Roster())
        if roster.lingering(email):
            log.info("back %s (room %s, within the grace period)", email, room)
        change = roster.add(key, email)
        if change.event is not None and self._announce is not None:
            self._announce(room, change, key)
        return roster.participants(), 0

    def leave(self, room: str, email: str, key: object, at_once: bool = False) -> None:
        roster = self._rosters.get(room)
        linger = self._grace > 0 and not at_once
        change = roster.remove(key, linger) if roster is not None else None
        if change is None:
            return
        if linger and roster.lingering(email):
            self._linger(room, email, self._grace)
        if not roster:
            del self._rosters[room]
        if change.event is not None and self._announce is not None:
            self._announce(room, change, key)

    def linger(self, room: str, email: str, seconds: float) -> None:
        """Count ``email`` present in ``room`` with no connection for
        ``seconds``: someone expected back (after a restart)."""
        self._rosters.setdefault(room, Roster()).linger(email)
        self._linger(room, email, seconds)

    def participants(self) -> list[tuple[str, str]]:
        """(room, e-mail) of everyone present, lingering or not, in order."""
        return [(room, email) for room, roster in self._rosters.items() for email in roster.participants()]

    def _linger(self, room: str, email: str, seconds: float) -> None:
        self._stop_lingering(room, email)
        # The loop the app runs on (not running yet while the app is built).
        loop = asyncio.get_event_loop()
        self._lingering[(room, email)] = loop.call_later(seconds, self._expire, room, email)

    def _stop_lingering(self, room: str, email: str) -> None:
        timer = self._lingering.pop((room, email), None)
        if timer is not None:
            timer.cancel()

    def _expire(self, room: str, email: str) -> None:
        """The grace period of ``email`` in ``room`` is over: they left."""
        self._lingering.pop((room, email), None)
        roster = self._rosters.get(room)
        change = roster.expire(email) if roster is not None else None
        if change is None:
            return
        if not roster:
            del self._rosters[room]
        if self._announce is not None:
            self._announce(room, change, None)

    def _stop_presence(self) -> None:
        """No more announcements: every grace period stops where it is."""
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()


class MemoryBackend(LocalPresence):
    """Messages kept in this process's memory: the last ``keep`` per room.

    Nothing survives a restart, not even who was present. Ids start at 1
    per room and only grow. ``clock`` gives the server time (seconds since
    the epoch), for tests; ``grace`` is the presence grace period.
    """

    def __init__(self, keep: int, clock: Callable[[], float] = time.time, grace: float = 0.0) -> None:
        super().__init__(grace)
        self._keep = keep
        self._clock = clock
        self._logs: dict[str, collections.deque[Message]] = {}
        self._last_id: dict[str, int] = {}
        # (room, sender, ref) -> message, oldest first, pruned by age.
        self._refs: collections.OrderedDict[tuple[str, str, str], Message] = collections.OrderedDict()

    async def append(
        self, room: str, sender: str, content: str, ref: str | None, origin: object
    ) -> tuple[Message, bool]:
        now = self._clock()
        if ref is not None:
            self._forget_refs_before(now - DEDUP_WINDOW)
            earlier = self._refs.get((room, sender, ref))
            if earlier is not None:
                return earlier, True
        message_id = self._last_id.get(room, 0) + 1
        self._last_id[room] = message_id
        message = Message(message_id, sender, content, now, ref)
        log = self._logs.get(room)
        if log is None:
            log = self._logs[room] = collections.deque(maxlen=self._keep)
        log.append(message)
        if ref is not None:
            self._refs[(room, sender, ref)] = message
        if self._deliver is not None:
            self._deliver(room, message, origin)
        return message, False

    def _forget_refs_before(self, cutoff: float) -> None:
        while self._refs:
            key, message = next(iter(self._refs.items()))
            if message.ts >= cutoff:
                return
            del self._refs[key]

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        log = list(self._logs.get(room, ()))
        ids = [m.id for m in log]
        lo = 0 if after is None else bisect.bisect_right(ids, after)
        hi = len(log) if before is None else bisect.bisect_left(ids, before)
        return log[max(lo, hi - limit) : hi] if limit > 0 else []

    async def close(self) -> None:
        self._stop_presence()
        self._deliver = None
        self._announce = None
