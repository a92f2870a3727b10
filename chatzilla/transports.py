"""sockjs-tornado's handlers with our origin policy, headers and size limits.

sockjs-tornado 1.0.7 checks the origin of WebSockets only, and its HTTP
transports answer any ``Origin`` with ``Access-Control-Allow-Credentials``.
Here every one of its handlers gets :class:`Guard` mixed in: a request from
a page that may not use the chat is refused with 403 before anything else
happens, and CORS headers go only to origins that may. :data:`HANDLERS`
maps each sockjs-tornado handler class to ours; the router swaps them in.

Packets (one WebSocket message, one ``xhr_send`` or ``jsonp_send`` body)
larger than the router's ``limits.max_packet`` close the session with
:data:`FRAME_TOO_LARGE`; a WebSocket packet that is not JSON becomes one
frame, refused with ``bad_frame`` like any other, instead of a logged
traceback and a dropped connection. A write to a WebSocket that is closing
is dropped quietly rather than raised into the sender of the frame.

Writing: :func:`write_frames` sends a connection's frames of one loop turn
by whatever carries its session now. Each WebSocket transport writes them
itself, framed its own way (one SockJS ``a[...]`` packet, or one raw message
per frame), straight to the socket; the HTTP transports (and a session
between two polls) queue them in the session until a request takes them.
Either way nothing is written, and :class:`Backlog` raised, when the client
would have more than the limit waiting.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import tornado.web
from sockjs.tornado import proto, static, transports
from sockjs.tornado.basehandler import CACHE_TIME
from sockjs.tornado.util import bytes_to_str
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketProtocol

from . import compat
from .outbox import raw_frames, sockjs_packet
from .security import SecureHeaders, content_security_policy, origin_allowed

if TYPE_CHECKING:
    from .connection import ChatRouter

#: The SockJS close frame for a packet far larger than the largest frame.
FRAME_TOO_LARGE = (4009, "Frame too large")

# Our iframe page for the iframe transports: sockjs-tornado's has an inline
# script, which our Content-Security-Policy forbids (and a document.domain
# assignment that browsers deprecate); this one loads everything from files.
IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="UTF-8">
  <script src="{sockjs}"></script>
  <script src="{bootstrap}"></script>
</head>
<body>
  <p>This is a SockJS hidden iframe, used by the chat's fallback transports.</p>
</body>
</html>
"""


class Guard(SecureHeaders):
    """Mixed into every SockJS handler; ``self.server`` is the ChatRouter."""

    server: ChatRouter

    def initialize(self, server) -> None:
        # Counted in sockjs-tornado's stats only once prepare() has run; its
        # info, chunking-test and greeting handlers forget to say so.
        self.logged = False
        super().initialize(server)

    def _origin_ok(self, origin: str | None) -> bool:
        request = self.request
        return origin_allowed(
            origin, request.headers.get("Host"), self.server.allowed_origins, scheme=request.protocol
        )

    def prepare(self):
        if not self._origin_ok(self.request.headers.get("Origin")):
            raise tornado.web.HTTPError(403)
        return super().prepare()

    def check_origin(self, origin: str) -> bool:
        # Tornado's WebSocket check, made the same as everyone else's.
        return self._origin_ok(origin)

    def disable_cache(self) -> None:
        # sockjs-tornado's, with no-transform: a proxy that recompresses or
        # rewrites a response breaks streaming and JSONP (SockJS protocol).
        self.set_header("Cache-Control", "no-store, no-cache, no-transform, must-revalidate, max-age=0")

    def enable_cache(self) -> None:
        # sockjs-tornado's, but its Expires is the server's local time with
        # no zone, which is no HTTP date: here the time in GMT (RFC 9110).
        self.set_header("Cache-Control", f"max-age={CACHE_TIME}, public")
        self.set_header("Expires", email.utils.formatdate(time.time() + CACHE_TIME, usegmt=True))
        self.set_header("Access-Control-Max-Age", CACHE_TIME)

    def preflight(self) -> None:
        # Called by the HTTP transports. Only an origin that passed prepare()
        # gets here; a request without Origin needs no CORS headers.
        origin = self.request.headers.get("Origin")
        self.add_header("Vary", "Origin")
        if origin is None:
            return
        self.set_header("Access-Control-Allow-Origin", origin)
        self.set_header("Access-Control-Allow-Credentials", "true")
        headers = self.request.headers.get("Access-Control-Request-Headers")
        if headers:
            self.set_header("Access-Control-Allow-Headers", headers)


class _PacketLimit:
    """For the handlers that receive packets over HTTP."""

    def post(self, session_id):
        if len(self.request.body) > self.server.limits.max_packet:
            session = compat.polling_session(self, session_id)
            if session is not None and not session.is_closed:
                session.close(*FRAME_TOO_LARGE)
            raise tornado.web.HTTPError(413)
        return super().post(session_id)


class XhrSendHandler(Guard, _PacketLimit, transports.XhrSendHandler):
    pass


class JSONPSendHandler(Guard, _PacketLimit, transports.JSONPSendHandler):
    pass


#: A JSONP callback we are willing to write into a script (as sockjs-node:
#: sockjs-client's are like ``_jp.a1b2c3``). Anything else would make our
#: origin serve a script of the requester's choosing (``?c=alert(1)//``),
#: which defeats ``script-src 'self'`` the day any HTML injection appears.
_CALLBACK = re.compile(r"[A-Za-z0-9_.]{1,256}")


class JSONPTransport(Guard, transports.JSONPTransport):
    """JSONP polling with the callback checked, and each response prefixed
    with ``/**/`` (as the SockJS protocol asks: a response that starts with
    the callback's name cannot be read as another type of file)."""

    def get(self, session_id):
        callback = self.get_argument("c", None, strip=False)
        if not callback or not _CALLBACK.fullmatch(callback):
            self.set_status(500)
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish('invalid "callback" parameter' if callback else '"callback" parameter required')
            return None
        return super().get(session_id)

    def send_pack(self, message, binary=False):
        # sockjs-tornado's, with the prefix.
        if binary:
            raise ValueError("binary not supported for JSONPTransport")
        self.active = False
        try:
            msg = f"/**/{self.callback}({proto.json_encode(message)});\r\n"
            self.set_header("Content-Type", "application/javascript; charset=UTF-8")
            self.set_header("Content-Length", len(msg))
            self.set_header("Etag", "dummy")
            self.write(msg)
            self.flush().add_done_callback(self.send_complete)
        except OSError:
            # The connection dropped: close the session instead of raising.
            self.session.delayed_close()


def _retrieve(future) -> None:
    if not future.cancelled():
        future.exception()  # a write to a closed stream: on_close deals with it


class Backlog(Exception):
    """Nothing was written: the client would have ``waiting`` bytes waiting,
    more than the limit (it does not read)."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} bytes waiting")
        self.waiting = waiting


def write_frames(session, frames: str | list[str], cache: dict, limit: int) -> None:
    """Send ``frames`` (one encoded frame, or a list of them) to ``session``'s
    client, in order, by the transport that carries it now. ``cache`` maps
    a packet's frames to its bytes, shared by every connection written to
    in the same turn. Raises :class:`Backlog` (and writes nothing) when more
    than ``limit`` bytes would be waiting for the client."""
    handler = session.handler
    if isinstance(handler, _DirectWrites) and handler.write_frames(frames, cache, limit):
        return
    queue_frames(session, [frames] if isinstance(frames, str) else frames, limit)


def waiting_bytes(session) -> int:
    """Bytes waiting for ``session``'s client now: held by the session for
    its next request, and written to its stream but not yet taken by the socket."""
    return compat.queued_bytes(session) + compat.unsent_bytes(compat.handler_stream(session.handler))


def queue_frames(session, texts: list[str], limit: int) -> None:
    """The HTTP transports' writing (and any session between two requests):
    the session queues and batches frames until a request takes them."""
    waiting = waiting_bytes(session) + sum(map(len, texts))
    if waiting > limit:
        raise Backlog(waiting)
    for text in texts:
        session.send_message(text)


class _DirectWrites(compat.WebSocketMixin):
    """For the WebSocket transports: a turn's frames, framed by
    :attr:`framing`, go straight to the socket (see :mod:`chatzilla.outbox`)."""

    server: ChatRouter

    #: The bytes on the wire for a list of frames.
    framing: Callable[[list[str]], bytes]

    def write_frames(self, frames: str | list[str], cache: dict, limit: int) -> bool:
        """Write ``frames``; False when this WebSocket cannot take bytes
        directly (permessage-deflate, which Tornado must apply, or no stream
        yet), and the session must queue them instead.

        The outbox's every write to a crowd comes here: the bytes go
        straight to the socket when Tornado holds nothing unsent for it (no
        future, no callback), and only what the socket cannot take goes
        through Tornado's stream, which then queues whatever comes after."""
        stream = compat.websocket_stream(self)
        if stream is None:
            return False
        # A stream means a connection (see websocket_stream).
        if cast(WebSocketProtocol, self.ws_connection).is_closing():
            # Its close frame is in (or its connection gone): end the
            # session, as a failed write does, instead of writing.
            self.server.io_loop.add_callback(self.on_close)
            return True
        key: tuple = (self.framing, frames) if isinstance(frames, str) else (self.framing, *frames)
        data = cache.get(key)
        if data is None:
            data = cache[key] = self.framing([frames] if isinstance(frames, str) else frames)
        unsent = compat.unsent_bytes(stream)
        if unsent + len(data) > limit:
            raise Backlog(unsent + len(data))
        if not unsent:
            try:
                sent = stream.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                return True  # closing: on_close follows
            if sent == len(data):
                return True
            data = data[sent:]
        try:
            stream.write(data)  # its future's outcome is retrieved by Tornado itself
        except StreamClosedError:
            pass  # closing: on_close follows
        return True


class _QuietWrites:
    """For the WebSocket transports: 1.0.7 lets a write to a WebSocket that
    is closing raise (WebSocketClosedError, not the IOError it catches) into
    whoever sent the frame, the hub's fan-out included, and leaves the
    futures of writes that fail later for asyncio to log as errors."""

    def send_pack(self, message, binary=False):
        try:
            written = self.write_message(message, binary)
        except (WebSocketClosedError, OSError):
            # Closing already; on_close ends the session (twice is harmless).
            self.server.io_loop.add_callback(self.on_close)
            return
        written.add_done_callback(_retrieve)


class _Lean(compat.OneFlagDetach, compat.PlainWebSocketGet, compat.PlainWebSocketExecute):
    """For the WebSocket transports, which live as long as their connection:
    what the handshake needed (a coroutine of sockjs-tornado's around
    Tornado's, and Tornado's get(); the request and response headers, the
    HTTP connection's objects, the template helpers) is not kept past it,
    the handler's attributes stay few enough for CPython to share their
    keys (see compat.OneFlagDetach), and the stream's write queues take no
    room while empty; at 10,000 idle connections their kilobytes add up
    (bench/crowd.py's idle memory)."""

    def open(self, *args, **kwargs):
        super().open(*args, **kwargs)
        # Emptied in place, not replaced: whoever holds them sees them empty.
        compat.empty_headers(self.request.headers)
        compat.forget_response_headers(self)
        info = getattr(self.session, "conn_info", None)
        if info is not None:
            info.headers = {}
        # The template helpers, closures over the handler (Tornado drops
        # them the same way once the connection closes).
        self.ui = None
        # The HTTP exchange is over (the stream is the WebSocket's now): its
        # connection objects, with the request loop's finished task, the
        # start lines and the client's context, go with it.
        self.request.connection = None
        self.request.server_connection = None
        stream = compat.handler_stream(self)
        if stream is not None:
            compat.short_stream_queues(stream)


class WebSocketTransport(Guard, _Lean, _QuietWrites, _DirectWrites, transports.WebSocketTransport):
    framing = staticmethod(sockjs_packet)

    def on_message(self, message):
        if not message or self.session is None:
            return  # SockJS ignores empty messages
        if len(message) > self.server.limits.max_packet:
            self.session.close(*FRAME_TOO_LARGE)
            return
        try:
            packet = proto.json_decode(bytes_to_str(message))
        except (ValueError, RecursionError):
            # Not a SockJS packet: handed on as one frame, which the
            # connection refuses with bad_frame; the session goes on.
            packet = [message]
        self.session.on_messages(packet if isinstance(packet, list) else [packet])


class RawWebSocketTransport(Guard, _Lean, _QuietWrites, _DirectWrites, transports.RawWebSocketTransport):
    framing = staticmethod(raw_frames)

    def on_message(self, message):
        if self.session is None:
            return
        if len(message) > self.server.limits.max_packet:
            self.session.close(*FRAME_TOO_LARGE)
            return
        # Every message is a frame here, an empty one too (sockjs-tornado
        # drops those silently): it gets its bad_frame like any other.
        self.session.on_message(message)

    def session_closed(self):
        # The raw endpoint has no SockJS close frame: the WebSocket close
        # carries the session's code and reason instead.
        code, reason = self.session.get_close_reason() if self.session else (None, None)
        try:
            self.close(code, reason)
        except OSError:
            pass
        finally:
            compat.detach(self)


class IFrameHandler(Guard, static.IFrameHandler):
    def get(self):
        # The iframe transports exist to be framed: by our own page, and by
        # the pages of the allowed origins, whose requests it then makes.
        allowed = self.server.allowed_origins
        if allowed:
            self.set_header(
                "Content-Security-Policy",
                content_security_policy(self.request.headers.get("Host"), framed_by=allowed),
            )
            self.clear_header("X-Frame-Options")  # it cannot name other origins
        page = IFRAME_PAGE.format(
            sockjs=self.server.settings["sockjs_url"], bootstrap=self.static_url("sockjs-iframe.js")
        ).encode()
        etag = hashlib.sha256(page).hexdigest()[:32]
        if etag in self.request.headers.get("If-None-Match", ""):
            self.set_status(304)
            return
        self.enable_cache()
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Etag", etag)
        self.write(page)


class _Streaming:
    """For the streaming transports: one response, many frames, no length.
    Its end must be the connection's end for an HTTP/1.0 client, whatever
    keep-alive it asked for, or it cannot tell the response has ended."""

    def prepare(self):
        if self.request.version != "HTTP/1.1":
            compat.close_after_response(self.request)
        return super().prepare()


class XhrStreamingTransport(Guard, _Streaming, transports.XhrStreamingTransport):
    pass


class EventSourceTransport(Guard, _Streaming, transports.EventSourceTransport):
    def set_header(self, name, value):
        # Exactly text/event-stream, as the SockJS protocol asks (1.0.7 adds
        # a charset; EventSource is UTF-8 whatever the header says).
        if name == "Content-Type" and str(value).startswith("text/event-stream"):
            value = "text/event-stream"
        super().set_header(name, value)


def _guarded(cls: type) -> type:
    return type(cls.__name__, (Guard, cls), {"__module__": __name__, "__doc__": cls.__doc__})


_SPECIAL = {
    transports.XhrSendHandler: XhrSendHandler,
    transports.JSONPSendHandler: JSONPSendHandler,
    transports.JSONPTransport: JSONPTransport,
    transports.XhrStreamingTransport: XhrStreamingTransport,
    transports.EventSourceTransport: EventSourceTransport,
    transports.WebSocketTransport: WebSocketTransport,
    transports.RawWebSocketTransport: RawWebSocketTransport,
    static.IFrameHandler: IFrameHandler,
}

#: sockjs-tornado handler class -> ours, for every handler a router serves.
HANDLERS: dict[type, type] = {
    cls: _SPECIAL.get(cls) or _guarded(cls)
    for cls in (
        *_SPECIAL,
        transports.XhrPollingTransport,
        transports.HtmlFileTransport,
        static.InfoHandler,
        static.ChunkingTestHandler,
        static.GreetingsHandler,
    )
}


def guard_urls(urls: list[tuple]) -> list[tuple]:
    """The router's URL specs with our handlers; raises for a handler we do
    not know, so a newer sockjs-tornado cannot add an unguarded one."""
    guarded = []
    for pattern, handler, kwargs in urls:
        if handler not in HANDLERS:
            raise RuntimeError(f"no guarded version of the SockJS handler {handler.__name__}")
        guarded.append((pattern, HANDLERS[handler], kwargs))
    return guarded
