"""The ``rooms`` frame (docs/protocol.md, "A list of rooms"): how many
messages each room a client names has after the last one it saw, and the
public rooms with the newest messages.

Both are cheap whatever the rooms hold: an unread count is the room's newest
id less the one seen (ids are consecutive in a room), one row per room asked;
the active rooms are read at most once per :data:`ACTIVE_TTL` seconds by a
process, whoever asks. A private room is never listed as active, and a
client hears of a private room it names only when it may join it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .backends.base import Backend, StorageError
from .hub import Client, Hub
from .protocol import ProtocolError, Rooms

#: The highest unread count said: 100 means "100 or more".
MAX_UNREAD = 100
#: Active public rooms in an answer, and rooms read from storage to find
#: them (private ones are left out).
ACTIVE_ROOMS = 10
ACTIVE_READ = 30
#: How long a process answers with the active rooms it read, in seconds.
ACTIVE_TTL = 10.0


def unread(seen: int, last: int) -> int:
    """Messages after id ``seen`` in a room whose newest id is ``last``, at
    most :data:`MAX_UNREAD`. A ``seen`` past ``last`` is from before the
    room started again (memory storage, restarted): all of it is new."""
    count = last - seen if seen <= last else last
    return min(max(count, 0), MAX_UNREAD)


class RoomsList:
    """Answers ``rooms`` frames for ``hub``'s connections from ``backend``;
    ``clock`` (monotonic seconds) ages the active rooms."""

    def __init__(self, hub: Hub, backend: Backend, clock: Callable[[], float] = time.monotonic) -> None:
        self._hub = hub
        self._backend = backend
        self._clock = clock
        self._active: list[dict] = []
        self._active_until = float("-inf")
        # While the active rooms are being read, what everyone asking waits for.
        self._reading: asyncio.Future[list[dict]] | None = None

    async def answer(self, client: Client, command: Rooms) -> None:
        """Send ``client`` the ``rooms`` frame. Raises :class:`ProtocolError`
        ``not_joined`` or ``unavailable``."""
        place = self._hub.member_of(client)
        if place is None:
            raise ProtocolError("not_joined", "join a room before asking for the list of rooms", command.ref)
        _room, key = place
        gate = self._hub.gate
        rooms = []
        try:
            for room, seen in command.seen:
                if gate is not None and not await gate.may_enter(room, key):
                    continue  # private: nothing said of it, as of a room never named
                _first, last = await self._backend.bounds(room)
                rooms.append({"room": room, "unread": unread(seen, last), "last": last})
            active = await self._active_rooms()
            if gate is not None:
                # Read up to ACTIVE_TTL ago: a room turned private since is gone at once.
                active = [r for r in active if not gate.known_private(r["room"])]
        except StorageError:
            raise ProtocolError(
                "unavailable", "the list of rooms cannot be read now; try again", command.ref
            ) from None
        frame: dict = {"type": "rooms", "rooms": rooms, "active": active}
        if command.ref is not None:
            frame["ref"] = command.ref
        self._hub.tell_one(client, frame)

    async def _active_rooms(self) -> list[dict]:
        if self._clock() < self._active_until:
            return self._active
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_active())
            self._reading.add_done_callback(self._read)
        return await asyncio.shield(self._reading)

    def _read(self, done: asyncio.Future[list[dict]]) -> None:
        self._reading = None
        if not done.cancelled() and done.exception() is None:
            self._active = done.result()
            self._active_until = self._clock() + ACTIVE_TTL

    async def _read_active(self) -> list[dict]:
        gate = self._hub.gate
        found = []
        for room, ts in await self._backend.active(ACTIVE_READ):
            if gate is None or await gate.may_enter(room, None):
                found.append({"room": room, "ts": ts})
                if len(found) >= ACTIVE_ROOMS:
                    break
        return found
