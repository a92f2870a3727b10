"""Reads that a crowd asking at once shares, none of them staler than asked.

A join storm asks storage the same things thousands of times in a few
seconds (a room's newest messages, its roles and rules; a person's bot
token, their sanctions), and each answer is a round trip to a storage
thread or a server. :class:`SharedReads` makes one read of a key at a time:
whoever asks while it is under way waits for the next one, which starts as
it ends and answers everyone who asked meanwhile. Every answer comes from a
read that started after it was asked for, so it sees everything stored
before the question: a ban stored before a join is seen by that join.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    """``await reads.get(key)``: ``read(key)``, shared as the module says.

    A lone question reads at once, in its caller's task; the shared next
    read runs in a task of its own, so one waiter's cancellation cancels
    only its wait. The read's exception reaches everyone who shared it.
    """

    def __init__(self, read: Callable[[K], Awaitable[V]]) -> None:
        self._read = read
        # Key -> None while a read is under way with nobody waiting for the
        # next, else the future of the next read.
        self._reads: dict[K, asyncio.Future[V] | None] = {}

    async def get(self, key: K) -> V:
        if key in self._reads:
            waiting = self._reads[key]
            if waiting is None:
                waiting = self._reads[key] = asyncio.get_running_loop().create_future()
            return await asyncio.shield(waiting)
        self._reads[key] = None
        try:
            return await self._read(key)
        finally:
            self._next(key)

    def _next(self, key: K) -> None:
        """A read of ``key`` ended: the one for those who asked meanwhile starts, if any."""
        waiting = self._reads.pop(key)
        if waiting is None:
            return
        self._reads[key] = None

        def done(task: asyncio.Future[V]) -> None:
            self._next(key)
            if waiting.cancelled():
                return
            if task.cancelled():
                waiting.cancel()
            elif (error := task.exception()) is not None:
                waiting.set_exception(error)
            else:
                waiting.set_result(task.result())

        asyncio.ensure_future(self._read(key)).add_done_callback(done)
