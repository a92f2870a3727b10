"""Frames to connections, written once per turn of the event loop.

Fan-out is what a chat server spends its time on. Writing each frame to each
connection as it comes (sockjs-tornado's ``send`` -> Tornado's
``write_message``) costs a task, futures and a loop callback per delivery. So
connections queue their frames here instead, and at the end of the loop's
turn :meth:`Outbox.flush` writes each connection's frames as one SockJS
``a[...]`` packet in one WebSocket frame. Connections that got the same frames
(everyone in a room but the sender) share the same bytes, built once; those
bytes go straight to the socket when Tornado has nothing else waiting to be
written on it, and through Tornado's stream (which queues them) otherwise.
A flush writes to a slice of the waiting connections at a time, so a crowd's
fan-out does not hold up the rest of the loop, and connections woken one by
one (a sender's acknowledgement, an answer) go ahead of a crowd's.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable

log = logging.getLogger("chatzilla.outbox")


def websocket_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (server to client, RFC 6455)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def sockjs_packet(texts: list[str]) -> bytes:
    """The SockJS ``a[...]`` packet carrying these frames, as a WebSocket frame."""
    return websocket_frame(("a[" + ",".join(map(json.dumps, texts)) + "]").encode())


def raw_frames(texts: list[str]) -> bytes:
    """The raw endpoint's framing: one WebSocket message per frame."""
    return b"".join(websocket_frame(text.encode()) for text in texts)


#: Most connections one flush writes to before the loop runs its other
#: callbacks (a frame that arrived, a stored message's acknowledgement):
#: one message to a room of 10,000 connections is some 150 ms of writing,
#: and whoever sends meanwhile should not wait for all of it. A message
#: takes some six turns of the loop from its frame to its acknowledgement
#: (the frame read, its task, the store's writer thread and back, the
#: delivery, the flush), each after the slice then running: 200 (some 4 ms
#: of writing) keeps that wait short, at a loop turn's cost per slice.
SLICE = 200


class Outbox:
    """The connections with frames waiting, flushed once per loop turn.

    ``schedule(callback)`` runs a callback soon on the loop (the router passes
    asyncio's ``call_soon``). A connection hands its frames to :meth:`add`,
    which keeps them on the connection (its ``outbox_frames``: one frame as
    it is, a list once there are more; ``None`` when nothing waits) and
    wakes it with the first; :meth:`flush` then calls each woken
    connection's ``flush(cache)``, which takes its ``outbox_frames`` and
    writes them, ``cache`` mapping the frames of a packet to its bytes,
    shared by every connection of that flush.

    A flush writes to at most ``slice_`` connections and schedules itself
    again for the rest, so the loop serves others in between. Up to half a
    slice goes to connections woken one by one since the last flush (a
    sender waiting for its acknowledgement, a probe in a room of its own);
    the rest of it, oldest first, to those waiting longer and to those a
    fan-out to a crowd woke (``crowd=True``), which wait behind the crowds
    woken before them: nobody waits for ever, however busy. Frames that come
    for a waiting connection join the ones it has waiting; one of its own
    (not a crowd's) wakes it again, one by one, so that everything it has
    waiting goes ahead of its place in the crowd (where it then finds
    nothing left to write).

    A crowd's frame costs no list and no other object the cyclic garbage
    collector counts: ten thousand of them waiting at once would set off
    collections that scan the whole heap.
    """

    def __init__(self, schedule: Callable[[Callable[[], None]], None], slice_: int = SLICE) -> None:
        self._schedule = schedule
        self._slice = slice_
        self._fresh: list = []  # woken one by one since the last flush began
        self._backlog: list = []  # woken earlier or by a crowd's fan-out, oldest first
        self._scheduled = False

    def add(self, connection, text: str, crowd: bool = False) -> None:
        """Queue ``text`` for ``connection`` (one of a fan-out to a room: ``crowd``)."""
        waiting = connection.outbox_frames
        if waiting is None:
            connection.outbox_frames = text
            connection.outbox_crowd = crowd
            self.wake(connection, crowd)
            return
        if isinstance(waiting, str):
            connection.outbox_frames = [waiting, text]
        else:
            waiting.append(text)
        if connection.outbox_crowd and not crowd:
            connection.outbox_crowd = False
            self.wake(connection)

    def wake(self, connection, crowd: bool = False) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self.flush)
        (self._backlog if crowd else self._fresh).append(connection)

    def flush(self) -> None:
        fresh, backlog = self._fresh, self._backlog
        self._fresh = []
        if len(fresh) + len(backlog) <= self._slice:
            waiting, self._backlog = backlog + fresh if backlog else fresh, []
        else:
            ahead = self._slice // 2 if backlog else self._slice
            waiting = fresh[:ahead]
            rest = self._slice - len(waiting)
            waiting += backlog[:rest]
            self._backlog = backlog[rest:] + fresh[ahead:]
        self._scheduled = bool(self._backlog)
        if self._scheduled:
            self._schedule(self.flush)
        cache: dict = {}
        for connection in waiting:
            try:
                connection.flush(cache)
            except Exception:
                # One connection's failure (a bug, a broken socket) is its
                # own: the ones after it this turn still get their frames,
                # or they would wait for a flush that never comes again.
                log.exception("could not write to a connection")
