"""The in-process backend: messages in this process's memory, nothing durable."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import time
from collections.abc import Callable

from ..chat import Change, Message, Quote, changed
from ..protocol import matches
from .base import CHANGE, DEDUP_WINDOW, deliver_stored
from .presence import LocalPresence
from .retention import KEEP_ALL, Retention


class _RoomLog:
    """One room's messages, oldest first, from index ``start`` on (those
    before it were removed and wait to be compacted away)."""

    def __init__(self, first: int) -> None:
        self.messages: list[Message] = []
        self.start = 0
        self.first = first  # the lowest id kept
        # Changed messages: id -> the id of its latest change, in the order
        # of those changes (a change moves its message to the end).
        self.changed: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.rev = 0  # the room's latest change id

    def at(self, message_id: int) -> int | None:
        """The index in ``messages`` of ``message_id``, if kept (ids are
        contiguous from ``first``)."""
        if message_id < self.first:
            return None
        index = self.start + message_id - self.first
        return index if index < len(self.messages) else None

    def drop_below(self, first: int) -> None:
        if first <= self.first:
            return
        self.first = first
        self.start = bisect.bisect_left(self.messages, first, lo=self.start, key=lambda m: m.id)
        if self.start > len(self.messages) // 2:
            # Compacted once half is dead: amortized O(1) a message.
            del self.messages[: self.start]
            self.start = 0


class MemoryBackend(LocalPresence):
    """Messages kept in this process's memory, as ``retention`` says (by
    default every one, until the process ends).

    Nothing survives a restart, not even who was present. Ids only grow in
    each room (from 1 in a new room). At most ``rooms`` rooms keep a log:
    past that, the room written to longest ago that nobody is present in
    loses its log, as at a restart (its ids go on growing if it is used
    again). ``clock`` gives the server time (seconds since the epoch), for
    tests; ``grace`` is the presence grace period.
    """

    def __init__(
        self,
        retention: Retention = KEEP_ALL,
        clock: Callable[[], float] = time.time,
        grace: float = 0.0,
        rooms: int = 10_000,
    ) -> None:
        super().__init__(grace)
        self._retention = retention
        self._clock = clock
        self._max_logs = rooms
        # Least recently written first.
        self._logs: collections.OrderedDict[str, _RoomLog] = collections.OrderedDict()
        self._last_id: dict[str, int] = {}
        # The largest id of any room whose log was dropped: a room starts
        # above it, so a room used again never repeats an id.
        self._id_floor = 0
        # Likewise the largest change id of a dropped log: a client that
        # knows the room's changes up to it would take the changes of a new
        # log counted from 1 again for ones it has seen, and miss them.
        self._rev_floor = 0
        # (room, sender, ref) -> message, oldest first, pruned by age.
        self._refs: collections.OrderedDict[tuple[str, str, str], Message] = collections.OrderedDict()

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
        now = self._clock()
        if ref is not None:
            self._forget_refs_before(now - DEDUP_WINDOW)
            earlier = self._refs.get((room, sender, ref))
            if earlier is not None:
                return earlier, True
        message_id = self._last_id.get(room, self._id_floor) + 1
        self._last_id[room] = message_id
        message = Message(message_id, sender, content, now, ref, reply_to=reply_to)
        log = self._logs.get(room)
        if log is None:
            self._drop_old_logs()
            log = self._logs[room] = _RoomLog(message_id)
            log.rev = self._rev_floor
        else:
            self._logs.move_to_end(room)
        log.messages.append(message)
        self._prune(room, log, now)
        if ref is not None:
            self._refs[(room, sender, ref)] = message
        deliver_stored(self._deliver, room, dataclasses.replace(message, quote=quote), origin)
        return message, False

    def _prune(self, room: str, log: _RoomLog, now: float) -> None:
        """Retention, applied as messages come (memory costs nothing to look at)."""
        if self._retention.keeps_all:
            return
        messages, start = log.messages, log.start

        def ts_at(message_id: int) -> float:
            return messages[start + message_id - log.first].ts

        log.drop_below(self._retention.first_kept(log.first, self._last_id[room], now, ts_at))

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
            self._rev_floor = max(self._rev_floor, self._logs.pop(room).rev)
            self._id_floor = max(self._id_floor, self._last_id.pop(room, 0))

    def _forget_refs_before(self, cutoff: float) -> None:
        while self._refs:
            key, message = next(iter(self._refs.items()))
            if message.ts >= cutoff:
                return
            del self._refs[key]

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        log = self._logs.get(room)
        if log is None or limit <= 0:
            return []
        self._prune(room, log, self._clock())
        messages, key = log.messages, (lambda m: m.id)
        lo = log.start if after is None else bisect.bisect_right(messages, after, lo=log.start, key=key)
        hi = len(messages) if before is None else bisect.bisect_left(messages, before, lo=log.start, key=key)
        return messages[max(lo, hi - limit) : hi]

    async def get(self, room: str, message_id: int) -> Message | None:
        log = self._logs.get(room)
        if log is None:
            return None
        self._prune(room, log, self._clock())
        index = log.at(message_id)
        return None if index is None else log.messages[index]

    async def get_many(self, room: str, ids: list[int]) -> list[Message]:
        found = [await self.get(room, message_id) for message_id in ids]
        return [message for message in found if message is not None]

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        message = await self.get(room, message_id)
        log = self._logs.get(room)
        if message is None or log is None:
            return None, False
        try:
            after = changed(message, change, log.rev + 1, self._clock())
        except ValueError:
            return message, False
        if after is None:
            return message, False
        log.rev = after.rev
        index = log.at(message_id)
        assert index is not None
        log.messages[index] = after
        log.changed.pop(message_id, None)
        log.changed[message_id] = after.rev
        deliver_stored(self._deliver, room, after, CHANGE)
        return after, True

    async def changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        log = self._logs.get(room)
        if log is None:
            return [], self._rev_floor
        self._prune(room, log, self._clock())
        found: list[Message] = []
        # Newest change first, back to `after`; then the oldest `limit` of them.
        for message_id, rev in reversed(log.changed.items()):
            if rev <= after:
                break
            index = log.at(message_id)
            if index is not None:
                found.append(log.messages[index])
        found.reverse()
        return found[:limit], log.rev

    async def search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        """A scan of the room's messages, newest first: no index."""
        log = self._logs.get(room)
        if log is None:
            return []
        self._prune(room, log, self._clock())
        messages = log.messages
        hi = (
            len(messages)
            if before is None
            else bisect.bisect_left(messages, before, lo=log.start, key=lambda m: m.id)
        )
        found: list[Message] = []
        for index in range(hi - 1, log.start - 1, -1):
            message = messages[index]
            if not message.deleted and matches(words, message.content):
                found.append(message)
                if len(found) >= limit:
                    break
        return found

    async def bounds(self, room: str) -> tuple[int, int]:
        log = self._logs.get(room)
        if log is None:
            # Never written to, or its log dropped: whatever it had is gone.
            return self._id_floor + 1, self._last_id.get(room, self._id_floor)
        self._prune(room, log, self._clock())
        return log.first, self._last_id[room]

    async def active(self, limit: int) -> list[tuple[str, float]]:
        # The logs are in the order they were last written to.
        found = []
        for room in reversed(self._logs):
            messages = self._logs[room].messages
            if messages:
                found.append((room, messages[-1].ts))
                if len(found) >= limit:
                    break
        return found

    async def close(self) -> None:
        self._stop_presence()
        self._deliver = None
        self._announce = None
