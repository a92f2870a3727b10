"""What the backends shared by many processes (Redis, Postgres, and the two
together) have in common: a name for this process, its background tasks,
health as the last call to the outside service found it, and the count of
this process's own connections per room and person.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
from collections.abc import Coroutine
from typing import Any

from .base import Announce, Deliver

log = logging.getLogger("chatzilla.backend")


def node_name() -> str:
    """A name for this process, unique among the processes sharing a service."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class NetworkedBackend:
    """The bookkeeping every networked backend does the same way.

    ``service`` names the outside service in logs ("Redis", "Postgres").
    Subclasses set ``_healthy`` True whenever a call succeeds and call
    :meth:`_failed` when one fails; :meth:`_count_in` and :meth:`_count_out`
    count this process's connections (a count out of one never counted in is
    ignored, so a leave may safely run twice).
    """

    service = "the service"

    def __init__(self, node: str | None = None, grace: float = 0.0) -> None:
        self.node = node or node_name()
        self._grace = grace
        self._deliver: Deliver | None = None
        self._announce: Announce | None = None
        self._healthy = False
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        # Leaves under way, which a clean stop lets finish first.
        self._leaving: set[asyncio.Task] = set()
        # This process's connections per room and e-mail: which rooms to
        # read, and whom to register again when the service forgot them.
        self._local: dict[str, collections.Counter[str]] = {}

    def start(self, deliver: Deliver, announce: Announce) -> None:
        self._deliver = deliver
        self._announce = announce

    @property
    def healthy(self) -> bool:
        return self._healthy and not self._closed

    def _failed(self, what: str, exc: BaseException) -> None:
        """A call to the service failed: unhealthy (said once in the log)."""
        if self._healthy:
            log.warning("%s unavailable (%s): %s", self.service, what, exc)
        self._healthy = False

    def _bug(self, what: str, exc: BaseException) -> None:
        """A background loop met an error no outage explains: logged with its
        traceback, unhealthy until a call succeeds again; the loop goes on."""
        log.error("%s: unexpected error (%s)", self.service, what, exc_info=exc)
        self._healthy = False

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run ``coro`` in the background until it ends or :meth:`_stop_tasks`."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_leave(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a leave in the background; :meth:`_finish_leaves` waits for it."""
        task = self._spawn(coro)
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    async def _finish_leaves(self, timeout: float = 2.0) -> None:
        if self._leaving:
            await asyncio.wait(self._leaving, timeout=timeout)

    async def _stop_tasks(self) -> None:
        """Cancel every background task and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def leave(self, room: str, email: str, key: object, at_once: bool = False) -> None:
        """The :class:`~chatzilla.backends.base.Backend` contract's: counted
        out here (the room is no longer read when it was the last here),
        then :meth:`_left` tells the service."""
        emptied = self._count_out(room, email)
        if emptied is None:
            return
        if emptied:
            self._unfollow(room)
        self._left(room, email, key, at_once)

    def _left(self, room: str, email: str, key: object, at_once: bool) -> None:
        """Tell the service that connection ``key`` of ``email`` left
        ``room`` (in the background: never raises)."""
        raise NotImplementedError

    def _unfollow(self, room: str) -> None:
        """Nobody here is in ``room`` any more: stop reading its messages."""

    def _count_in(self, room: str, email: str) -> None:
        self._local.setdefault(room, collections.Counter())[email] += 1

    def _count_out(self, room: str, email: str) -> bool | None:
        """One connection of ``email`` fewer in ``room``: None if none was
        counted (nothing to do), else whether the room has nobody left here."""
        local = self._local.get(room)
        if local is None or local[email] <= 0:
            return None
        local[email] -= 1
        if not local[email]:
            del local[email]
        if local:
            return False
        del self._local[room]
        return True

    def _connected_here(self, room: str, email: str) -> bool:
        """Has ``email`` a connection in ``room`` on this process?"""
        local = self._local.get(room)
        return bool(local and local[email])
