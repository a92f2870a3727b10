"""The HTTP server in front of the app, hardened against clients that hold
connections open without using them (slowloris) and against running out of
file descriptors.

* Timeouts: a request's head must arrive within ``header_timeout`` seconds
  (which also ends a keep-alive connection idle that long between two
  requests), its body within ``body_timeout``. Tornado's defaults are an
  hour and none: 1,100 unfinished heads from one address made ``/healthz``
  time out. A streaming response or a WebSocket is not a request being read
  and is not affected.
* Raw connections per client address (IPv6 counted per /64, see
  :func:`chatzilla.proxies.address_key`): at most
  :func:`max_sockets_per_address`, counted from accept to close whatever
  they carry. A connection past it is closed at once. Trusted proxies are
  not counted: every client behind them shares their address (the proxy
  buffers heads itself).
* Accepting: past the file limit ``accept()`` fails with EMFILE for as long
  as the limit is reached; Tornado's accept loop raises, asyncio logs a
  traceback and calls it again at once (52,768 tracebacks in 20 s). Here
  accepting pauses with a growing back-off (from 50 ms to 1 s); the failure
  is logged at most once a minute, and a line says when it works again.
"""

from __future__ import annotations

import collections
import errno
import logging
import socket
from collections.abc import Callable, Iterable

import tornado.httpserver
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from .compat import listen_on, serve_accepted
from .proxies import TrustedProxies, address_key

log = logging.getLogger("chatzilla.server")

#: accept() errors that mean "out of a resource for now": pause, retry.
OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
BACKOFF_FIRST = 0.05
BACKOFF_MOST = 1.0
#: Seconds between two warnings that accepting fails (the first failures
#: of the next minute only pause, quietly: an attack must not fill the log).
WARN_EVERY = 60.0
#: Connections taken per readiness event, as Tornado's own loop.
ACCEPTS_PER_EVENT = 128


def max_sockets_per_address(max_connections_per_address: int) -> int:
    """Raw connections one client address may hold: two per chat connection
    (an HTTP transport's receiving request and its sends), and 10 for the
    page and its files."""
    return 2 * max_connections_per_address + 10


class ChatHTTPServer(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server with a cap on raw connections per address
    (``max_per_address``; ``proxies`` are exempt) and an accept loop that
    backs off when it runs out of file descriptors."""

    def initialize(  # type: ignore[override]
        self, request_callback, *, max_per_address: int, proxies: TrustedProxies, **kwargs
    ) -> None:
        super().initialize(request_callback, **kwargs)
        self.max_per_address = max_per_address
        self.proxies = proxies
        #: Raw connections open per address key.
        self.sockets: collections.Counter[str] = collections.Counter()
        self._refused_logged: set[str] = set()

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            listen_on(self, sock, accept_with_backoff(sock, self._accepted))

    def _accepted(self, connection: socket.socket, address) -> None:
        serve_accepted(self, connection, address)

    def handle_stream(self, stream: IOStream, address) -> None:
        peer = address[0] if isinstance(address, tuple) and address else ""
        if not peer or self.proxies.trusts(peer):
            super().handle_stream(stream, address)
            return
        key = address_key(peer)
        if self.sockets[key] >= self.max_per_address:
            if key not in self._refused_logged:
                # Once per address until it is back under the cap: an
                # attacker must not be able to fill the log either.
                self._refused_logged.add(key)
                log.info("refusing connections from %s: %d open already", key, self.sockets[key])
            stream.close()
            return
        self.sockets[key] += 1
        close_fd = stream.close_fd

        def release() -> None:
            # IOStream.close() calls close_fd exactly once, however the
            # connection ends (a request, a stream, a WebSocket).
            self.sockets[key] -= 1
            if self.sockets[key] <= 0:
                del self.sockets[key]
                self._refused_logged.discard(key)
            close_fd()

        stream.close_fd = release  # type: ignore[method-assign]
        super().handle_stream(stream, address)


def accept_with_backoff(
    sock: socket.socket, callback: Callable[[socket.socket, object], None]
) -> Callable[[], None]:
    """Call ``callback(connection, address)`` for each connection ``sock``
    accepts, on the current IOLoop; returns a function that stops it.

    When accepting fails for want of file descriptors (or memory), accepting
    pauses, 50 ms at first and twice as long after each failure in a row, up
    to a second; that is logged at most once a minute, and once that it
    works again."""
    return _AcceptLoop(sock, callback).stop


class _AcceptLoop:
    def __init__(self, sock: socket.socket, callback: Callable[[socket.socket, object], None]) -> None:
        self._sock = sock
        self._callback = callback
        self._loop = IOLoop.current()
        self._stopped = False
        self._paused: object | None = None  # the timeout that resumes accepting
        self._delay = BACKOFF_FIRST
        self._failures = 0  # in a row
        self._warned: float | None = None  # when the last warning was logged
        self._told = True  # that accepting works again, since that warning
        self._loop.add_handler(sock, self._accept, IOLoop.READ)

    def _resume(self) -> None:
        self._paused = None
        if not self._stopped:
            self._loop.add_handler(self._sock, self._accept, IOLoop.READ)

    def _accept(self, fd, events) -> None:
        for _ in range(ACCEPTS_PER_EVENT):
            if self._stopped:
                return
            try:
                connection, address = self._sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    raise
                self._failures += 1
                now = self._loop.time()
                if self._warned is None or now - self._warned >= WARN_EVERY:
                    self._warned = now
                    self._told = False
                    log.warning("cannot accept connections (%s); pausing, then trying again", exc.strerror)
                self._loop.remove_handler(self._sock)
                self._paused = self._loop.call_later(self._delay, self._resume)
                self._delay = min(BACKOFF_MOST, self._delay * 2)
                return
            if self._failures and not self._told:
                self._told = True
                log.warning("accepting connections again, after %d failed attempts", self._failures)
            self._failures, self._delay = 0, BACKOFF_FIRST
            self._callback(connection, address)

    def stop(self) -> None:
        self._stopped = True
        if self._paused is not None:
            self._loop.remove_timeout(self._paused)
        else:
            self._loop.remove_handler(self._sock)
