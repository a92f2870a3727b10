"""What keeps each connection, and each client address, within bounds. No I/O.

One :class:`ConnectionLimits` per router holds the sizes the settings allow
and what its connections count together: open connections per client
address, joins per address, frames a second per connection, and frames a
connection sent although it was told ``rate_limited``. Connections are
opaque hashable keys; the caller says when one opens and when it is gone.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Hashable

from .limits import RateLimiter, flood_limiter
from .settings import Settings

#: A packet (many frames) may be this many times the largest frame; past it
#: the session is closed rather than the frames refused one by one.
PACKET_FACTOR = 16
#: Frames refused as too fast that a connection may send (at the
#: ``rate_limit`` a second once spent) before it is closed: a page that waits
#: for ``retry_after`` gets a handful refused at most; a flood that ignores
#: them gets closed.
IGNORED_BURST = 100


class ConnectionLimits:
    """The limits of ``settings`` (largest frame and packet, bytes waiting,
    connections per address, ``rate_limit``) and their counts. ``clock`` is
    monotonic seconds, for tests."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_frame = settings.max_frame
        #: The largest packet (one WebSocket message, one xhr_send body).
        self.max_packet = PACKET_FACTOR * settings.max_frame
        #: Bytes that may wait, to be sent to a client or handled from one.
        self.max_queued = settings.max_queued
        #: Bytes of frames a client asked for (a ``joined``, history pages)
        #: that may wait besides :attr:`max_queued`: a few of the hub's
        #: bounded history frames.
        self.max_asked = 4 * settings.history_bytes
        self.max_per_address = settings.max_connections_per_address
        # Frames of any type, per connection.
        self._frames = flood_limiter(settings.rate_limit, clock)
        # Frames refused as too fast, per connection.
        self._ignored = RateLimiter(settings.rate_limit, IGNORED_BURST, clock)
        # Joins per client address: as many at once as it may have
        # connections, then `rate_limit` a second.
        self._joins = RateLimiter(settings.rate_limit, settings.max_connections_per_address, clock)
        # Open connections per client address.
        self._addresses: collections.Counter[str] = collections.Counter()

    def open(self, address: str) -> bool:
        """Count a new connection from ``address``; False (nothing counted)
        when the address has :attr:`max_per_address` open already."""
        if self._addresses[address] >= self.max_per_address:
            return False
        self._addresses[address] += 1
        return True

    def open_from(self, address: str) -> int:
        """Connections open from ``address``."""
        return self._addresses.get(address, 0)

    def close(self, connection: Hashable, address: str | None) -> None:
        """``connection`` is gone: forget its buckets and, if it was counted
        (``address`` not None), uncount it. Call once per counted connection."""
        self._frames.forget(connection)
        self._ignored.forget(connection)
        if address is None:
            return
        self._addresses[address] -= 1
        if self._addresses[address] <= 0:
            del self._addresses[address]

    def frame(self, connection: Hashable) -> float:
        """0.0 when ``connection`` may send another frame now, else the
        seconds it has to wait (``rate_limited``)."""
        return self._frames.take(connection)

    def ignores_refusals(self, connection: Hashable) -> bool:
        """Count one frame refused as too fast; True once ``connection`` has
        had more than :data:`IGNORED_BURST` of them (at ``rate_limit`` a
        second): it should be closed."""
        return self._ignored.take(connection) > 0

    def join(self, address: str | None) -> float:
        """0.0 when ``address`` may join a room now, else the seconds to wait."""
        return self._joins.take(address)
