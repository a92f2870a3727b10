"""The seam between the chat and where messages are kept and fanned out.

A backend stores messages, gives them their ids and timestamps, and reports
every newly stored message to the hub through the ``deliver`` callback, which
fans it out to the connections of this process. The hub and the connections
never know which backend runs: the in-process :class:`MemoryBackend`, the
durable SQLite one (:mod:`chatzilla.sqlite_backend`), or a shared one behind
the same methods.
"""

from __future__ import annotations

import bisect
import collections
import time
from collections.abc import Callable
from typing import Protocol

from .chat import Message

#: ``deliver(room, message, origin)``: ``origin`` is the opaque token the
#: sender passed to :meth:`Backend.append` (so the hub can skip the sending
#: connection), or None when the message came from elsewhere.
Deliver = Callable[[str, Message, object], None]

#: How long a message's ``ref`` identifies it for retries, in seconds: a
#: client that lost an acknowledgement retries well within this.
DEDUP_WINDOW = 600.0


class StorageError(Exception):
    """The backend could not store or read; the message was not accepted."""


class Backend(Protocol):
    """What the hub needs from storage and fan-out."""

    def start(self, deliver: Deliver) -> None:
        """Begin reporting stored messages to ``deliver``."""

    async def append(self, room: str, sender: str, content: str,
                     ref: str | None, origin: object) -> tuple[Message, bool]:
        """Store a message; return it (with id and ``ts``) and ``duplicate``.

        ``duplicate`` is True when ``sender`` already sent ``ref`` to ``room``
        within :data:`DEDUP_WINDOW`: the original message is returned and
        nothing is stored or delivered. Otherwise, when this returns, the
        message is as safe as the backend makes it and has been passed to
        ``deliver``. Raises :class:`StorageError` when it cannot store.
        """

    async def page(self, room: str, after: int | None, before: int | None,
                   limit: int) -> list[Message]:
        """Up to ``limit`` of the newest messages with ``after < id < before``
        (either bound may be None), oldest first."""

    async def close(self) -> None:
        """Release what the backend holds; safe to call twice."""


class MemoryBackend:
    """Messages kept in this process's memory: the last ``keep`` per room.

    Nothing survives a restart. Ids start at 1 per room and only grow.
    ``clock`` gives the server time (seconds since the epoch), for tests.
    """

    def __init__(self, keep: int, clock: Callable[[], float] = time.time) -> None:
        self._keep = keep
        self._clock = clock
        self._logs: dict[str, collections.deque[Message]] = {}
        self._last_id: dict[str, int] = {}
        # (room, sender, ref) -> message, oldest first, pruned by age.
        self._refs: collections.OrderedDict[tuple[str, str, str], Message] = collections.OrderedDict()
        self._deliver: Deliver | None = None

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def append(self, room: str, sender: str, content: str,
                     ref: str | None, origin: object) -> tuple[Message, bool]:
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

    async def page(self, room: str, after: int | None, before: int | None,
                   limit: int) -> list[Message]:
        log = list(self._logs.get(room, ()))
        ids = [m.id for m in log]
        lo = 0 if after is None else bisect.bisect_right(ids, after)
        hi = len(log) if before is None else bisect.bisect_left(ids, before)
        return log[max(lo, hi - limit):hi] if limit > 0 else []

    async def close(self) -> None:
        self._deliver = None
