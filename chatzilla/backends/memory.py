"""The in-process backend: messages in this process's memory, nothing durable."""

from __future__ import annotations

import bisect
import collections
import time
from collections.abc import Callable

from ..chat import Message
from .base import DEDUP_WINDOW, deliver_stored
from .presence import LocalPresence


class MemoryBackend(LocalPresence):
    """Messages kept in this process's memory: the last ``keep`` per room.

    Nothing survives a restart, not even who was present. Ids only grow in
    each room (from 1 in a new room). At most ``rooms`` rooms keep a log:
    past that, the room written to longest ago that nobody is present in
    loses its log, as at a restart (its ids go on growing if it is used
    again). ``clock`` gives the server time (seconds since the epoch), for
    tests; ``grace`` is the presence grace period.
    """

    def __init__(
        self, keep: int, clock: Callable[[], float] = time.time, grace: float = 0.0, rooms: int = 10_000
    ) -> None:
        super().__init__(grace)
        self._keep = keep
        self._clock = clock
        self._max_logs = rooms
        # Least recently written first.
        self._logs: collections.OrderedDict[str, collections.deque[Message]] = collections.OrderedDict()
        self._last_id: dict[str, int] = {}
        # The largest id of any room whose log was dropped: a room starts
        # above it, so a room used again never repeats an id.
        self._id_floor = 0
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
        message_id = self._last_id.get(room, self._id_floor) + 1
        self._last_id[room] = message_id
        message = Message(message_id, sender, content, now, ref)
        log = self._logs.get(room)
        if log is None:
            self._drop_old_logs()
            log = self._logs[room] = collections.deque(maxlen=self._keep)
        else:
            self._logs.move_to_end(room)
        log.append(message)
        if ref is not None:
            self._refs[(room, sender, ref)] = message
        deliver_stored(self._deliver, room, message, origin)
        return message, False

    def _drop_old_logs(self) -> None:
        """Make room for one more log: drop the least recently written ones
        of rooms nobody is present in, down to ``rooms`` - 1."""
        if len(self._logs) < self._max_logs:
            return
        for room in list(self._logs):
            if len(self._logs) < self._max_logs:
                return
            if room in self._rosters:
                continue  # someone is here: their history stays
            del self._logs[room]
            self._id_floor = max(self._id_floor, self._last_id.pop(room, 0))

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
