"""The seam between the chat and where messages are kept and fanned out.

A backend stores messages, gives them their ids and timestamps, and reports
every stored message to the hub through the ``deliver`` callback, which fans
it out to the connections of this process. The hub and the connections never
know which backend runs: an in-process one here, a durable or shared one
behind the same methods.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Protocol

from .chat import Message

#: ``deliver(room, message, origin)``: ``origin`` is the opaque token the
#: sender passed to :meth:`Backend.append` (so the hub can skip the sending
#: connection), or None when the message came from elsewhere.
Deliver = Callable[[str, Message, object], None]


class Backend(Protocol):
    """What the hub needs from storage and fan-out."""

    def start(self, deliver: Deliver) -> None:
        """Begin reporting stored messages to ``deliver``."""

    async def append(self, room: str, sender: str, content: str,
                     ref: str | None, origin: object) -> Message:
        """Store a message and return it with its id and ``ts``.

        When this returns, the message is as safe as the backend makes it and
        has been passed to ``deliver``.
        """

    async def recent(self, room: str, limit: int) -> list[Message]:
        """The room's last ``limit`` messages, oldest first."""

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
        self._deliver: Deliver | None = None

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def append(self, room: str, sender: str, content: str,
                     ref: str | None, origin: object) -> Message:
        message_id = self._last_id.get(room, 0) + 1
        self._last_id[room] = message_id
        message = Message(message_id, sender, content, self._clock(), ref)
        log = self._logs.get(room)
        if log is None:
            log = self._logs[room] = collections.deque(maxlen=self._keep)
        log.append(message)
        if self._deliver is not None:
            self._deliver(room, message, origin)
        return message

    async def recent(self, room: str, limit: int) -> list[Message]:
        log = self._logs.get(room, ())
        return list(log)[-limit:] if limit else []

    async def close(self) -> None:
        self._deliver = None
