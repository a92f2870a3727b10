"""Every reach into the private parts of sockjs-tornado 1.0.7 and Tornado 6.6.1.

sockjs-tornado is unmaintained, and some of what we need (the size of what
waits to be sent, a WebSocket without its handshake coroutine kept alive, a
router whose handlers are swapped for guarded ones) neither library offers
publicly. So those reaches stay, but here only, each behind a named function:
``tests/test_compat.py`` has a test per function that fails loudly when a
version bump removes what it relies on, and a scan that no other module of
``chatzilla`` touches a private name of either library. Both versions are
pinned in ``setup.cfg`` for this reason: a bump means running those tests
first.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sockjs.tornado.session import BaseSession
from sockjs.tornado.transports.streamingbase import StreamingTransportBase
from tornado.httputil import HTTPHeaders
from tornado.iostream import IOStream
from tornado.log import gen_log
from tornado.tcpserver import TCPServer
from tornado.websocket import WebSocketHandler

if TYPE_CHECKING:
    # Mixins of WebSocket handlers: checked as WebSocketHandlers, built on object.
    WebSocketMixin = WebSocketHandler
else:
    WebSocketMixin = object

# -- Tornado -------------------------------------------------------------------


def unsent_bytes(stream: IOStream | None) -> int:
    """Bytes written to ``stream`` that its socket has not taken yet (0 for None)."""
    if stream is None:
        return 0
    # Tornado keeps no public count; these two indexes are what it uses.
    return stream._total_write_index - stream._total_write_done_index


def handler_stream(handler: Any) -> IOStream | None:
    """The Tornado stream under a SockJS transport handler (a WebSocket's, or
    an HTTP request's), or None when it has none (any more)."""
    if handler is None:
        return None
    connection = getattr(handler, "ws_connection", None)  # a WebSocket
    if connection is None:
        connection = getattr(handler.request, "connection", None)  # HTTP
    return getattr(connection, "stream", None)


def websocket_stream(handler: WebSocketHandler) -> IOStream | None:
    """The stream under a WebSocket handler when frames may be written to
    it as they are: None before it has one, or when it negotiated
    permessage-deflate (Tornado must compress them). One call for the
    outbox's every write (the compressor is Tornado's private name)."""
    connection = handler.ws_connection
    if connection is None or getattr(connection, "_compressor", None) is not None:
        return None
    return getattr(connection, "stream", None)


def empty_headers(headers: HTTPHeaders) -> None:
    """Empty ``headers`` in place, and give back the room they took: their
    own ``clear()`` deletes one name at a time, and a dict keeps its table
    at the largest size it had (about 800 bytes for a handshake's)."""
    headers._as_list = {}
    headers._combined_cache = {}


def forget_response_headers(handler: Any) -> None:
    """Empty the handler's response headers in place (a WebSocket keeps the
    handshake's for as long as it lives)."""
    empty_headers(handler._headers)


class _ShortQueue:
    """A deque made only once something waits in it, and let go once it is
    empty again: for the two queues an IOStream keeps, which an empty
    ``collections.deque`` makes about 760 bytes each (its first block is
    allocated with it), and which a WebSocket of ours leaves empty nearly
    all its life (the outbox writes straight to the socket while nothing
    waits). It answers what Tornado 6.6.1 asks of those queues: append,
    popleft, ``[0]``, ``[-1]``, truth, len, iteration and clear."""

    __slots__ = ("_items",)

    def __init__(self, items: Any = ()) -> None:
        self._items: collections.deque | None = collections.deque(items) if items else None

    def append(self, item: Any) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)

    def popleft(self) -> Any:
        if self._items is None:
            raise IndexError("pop from an empty deque")
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def __getitem__(self, index: int) -> Any:
        if self._items is None:
            raise IndexError("deque index out of range")
        return self._items[index]

    def __bool__(self) -> bool:
        return self._items is not None

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(()) if self._items is None else iter(self._items)

    def clear(self) -> None:
        self._items = None


def short_stream_queues(stream: IOStream) -> None:
    """Give ``stream`` queues of written data and of write futures that take
    no room while empty (:class:`_ShortQueue`), keeping what they hold."""
    stream._write_futures = _ShortQueue(stream._write_futures)  # type: ignore[assignment]
    stream._write_buffer._buffers = _ShortQueue(stream._write_buffer._buffers)  # type: ignore[assignment]


#: What Tornado's WebSocketHandler refuses once the handshake is done.
_HTTP_ONLY = ("write", "redirect", "set_header", "set_cookie", "set_status", "flush", "finish")


class OneFlagDetach(WebSocketMixin):
    """Mixin for a WebSocketHandler: once the handshake is done, the HTTP
    response methods raise, as Tornado's do, but by one flag read in the
    class's methods instead of seven functions put on the instance.

    Tornado's ``_detach_stream`` sets those seven as instance attributes,
    which takes a handler over the 29 attributes CPython's instance dicts
    share their keys for (sockjs-tornado's handlers have 24 by then): its
    dict becomes one of its own, about 1.6 KB instead of about 300 bytes.
    """

    #: Set on the instance once the stream is the WebSocket's.
    websocket_detached = False

    def _detach_stream(self) -> IOStream:
        self.websocket_detached = True
        return self.detach()


def _refused_once_detached(name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.websocket_detached:
            raise RuntimeError("Method not supported for Web Sockets")
        return getattr(super(OneFlagDetach, self), name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


for _name in _HTTP_ONLY:
    setattr(OneFlagDetach, _name, _refused_once_detached(_name))


class PlainWebSocketExecute(WebSocketMixin):
    """Mixin for sockjs-tornado's WebSocket handlers: the request runs
    Tornado's own ``_execute`` instead of sockjs-tornado's.

    sockjs-tornado's is a generator coroutine that repeats the checks
    Tornado's get() makes, then waits on it: its Runner, future, callbacks
    and locals stay alive as long as the connection, about 2 KiB each. Its
    method check (405 with Allow: GET) is kept, with an empty body.
    """

    def _execute(self, transforms: Any, *args: bytes, **kwargs: bytes) -> Any:
        if self.request.method != "GET":
            # 405 with Allow: GET, as sockjs-tornado's, but with no body and
            # no Content-Type, as the SockJS protocol asks (its own says
            # "WebSocket only supports GET requests." as text/html).
            self._transforms = transforms
            self.set_status(405)
            self.set_header("Allow", "GET")
            self.clear_header("Content-Type")
            self.finish()
            return None
        return WebSocketHandler._execute(self, transforms, *args, **kwargs)


class PlainWebSocketGet(WebSocketMixin):
    """Mixin for a WebSocketHandler: Tornado 6.6.1's ``get``, its checks and
    refusals as they are, but a plain method that returns the handshake's
    coroutine (which then reads the connection's frames for as long as it
    lives) for ``_execute`` to await, instead of a coroutine awaiting it.

    Tornado's stays suspended as long as the connection: its frame, and in
    it the request's headers and a ``map`` over the Connection header with
    its lambda, about 650 bytes a connection. It calls
    ``RequestHandler._check_cross_origin``, as Tornado's does.
    """

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.open_args = args
        self.open_kwargs = kwargs
        headers = self.request.headers
        if headers.get("Upgrade", "").lower() != "websocket":
            return self._refuse(400, 'Can "Upgrade" only to "WebSocket".')
        if "upgrade" not in [part.strip().lower() for part in headers.get("Connection", "").split(",")]:
            return self._refuse(400, '"Connection" must be "Upgrade".')
        # After prepare(), as in Tornado: check_origin may rely on it.
        error = self._check_cross_origin(self.check_origin)
        if error is not None:
            return self._refuse(403, "Cross origin websockets not allowed", error)
        self.ws_connection = self.get_websocket_protocol()
        if self.ws_connection:
            return self.ws_connection.accept_connection(self)
        self.set_status(426, "Upgrade Required")
        self.set_header("Sec-WebSocket-Version", "13")
        return None

    def _refuse(self, status: int, message: str, why: str | None = None) -> None:
        self.set_status(status)
        self.finish(message)
        if why is None:
            gen_log.debug(message)
        else:
            gen_log.debug("%s: %s", message, why)


# -- sockjs-tornado -------------------------------------------------------------


def replace_transport_handlers(router: Any, replace: Callable[[list[tuple]], list[tuple]]) -> None:
    """Give ``router`` the URL specs ``replace`` makes of its own (pattern,
    handler class, kwargs); must run before ``router.urls`` is used."""
    router._transport_urls = replace(router._transport_urls)


def stop_router_timers(router: Any) -> None:
    """Stop the router's periodic callbacks: session expiry and stats."""
    router._sessions_cleanup.stop()
    router.stats._callback.stop()


def polling_session(handler: Any, session_id: str) -> Any:
    """The session a polling (HTTP) transport request names, or None."""
    return handler._get_session(session_id)


def detach(handler: Any) -> None:
    """Unhook a WebSocket transport handler from its session."""
    handler._detach()


def queued_bytes(session: Any) -> int:
    """Frames a polling session holds for its next request, in characters (0
    for sessions that queue nothing)."""
    return len(getattr(session, "send_queue", ""))


def drop_queued(session: Any) -> None:
    """Throw away what a polling session holds for its next request."""
    if hasattr(session, "send_queue"):
        session.send_queue = ""


def close_session_quietly(session: Any, code: int, reason: str) -> None:
    """Close a session without writing its close frame into the current
    handler (the next poll is answered with it instead): 1.0.7's own close
    writes into a polling response that may already be finishing."""
    BaseSession.close(session, code, reason)


def close_after_response(request: Any) -> None:
    """Have Tornado close ``request``'s connection once the response ends,
    whatever keep-alive the client asked for: a streaming response has no
    length, so for an HTTP/1.0 client its end is the connection's end.
    (sockjs-tornado sets ``no_keep_alive`` for this, which Tornado 6 ignores.)"""
    connection = getattr(request, "connection", None)
    if connection is not None and hasattr(connection, "_disconnect_on_finish"):
        connection._disconnect_on_finish = True


def streaming_handler(handler: Any) -> bool:
    """Is ``handler`` one of sockjs-tornado's streaming transports (one
    response carries many frames, written one after another)?"""
    return isinstance(handler, StreamingTransportBase)


def listen_on(server: TCPServer, sock: socket.socket, stop: Callable[[], None]) -> None:
    """Register ``sock`` as one of ``server``'s listening sockets, accepted by
    our own loop (``stop`` ends it), as ``TCPServer.add_sockets`` does with
    Tornado's: ``server.stop()`` then stops it and closes ``sock``."""
    server._sockets[sock.fileno()] = sock
    server._handlers[sock.fileno()] = stop


def serve_accepted(server: TCPServer, connection: socket.socket, address: Any) -> None:
    """Hand a connection our accept loop took to ``server``, as Tornado's
    own loop does (TLS wrapping, then ``handle_stream``)."""
    server._handle_connection(connection, address)


class PathOnlySummary:
    """Mixin for a RequestHandler (before it among the bases): Tornado's
    access log and its warnings name the request by method, path and client,
    never its query, which may hold a secret. Reaches
    ``RequestHandler._request_summary`` (Tornado 6), which they all call."""

    request: Any

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"
