"""The SockJS transport: one :class:`ChatConnection` per SockJS session.

It parses each frame, hands the command to the hub and turns
:class:`~chatzilla.protocol.ProtocolError` into ``error`` frames; the
connection stays open after any error. Frames from one connection are carried
out one after another, in the order they arrived.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from sockjs.tornado import SockJSConnection, SockJSRouter
from sockjs.tornado.session import CLOSED, BaseSession, Session

from . import protocol
from .hub import Hub
from .protocol import Join, ProtocolError, Say

log = logging.getLogger("chatzilla.connection")


class ChatSession(Session):
    """sockjs-tornado's session, with two races of its polling transports fixed.

    Closing: 1.0.7 writes the close frame into the current handler even when a polling
    response has already been written and is finishing: a second write that
    overflows Content-Length (an exception) or, chunked, two callbacks in one
    JSONP response. Here the close frame waits for the next poll instead,
    which sockjs-tornado answers with it once the session is closed.
    """

    def set_handler(self, handler, start_heartbeat: bool = True) -> bool:
        # A polling request whose client hung up while Tornado was still
        # reading it never gets on_connection_close; attached, it would keep
        # the session (and its participant) alive until the next heartbeat.
        # Refused, the session expires after disconnect_delay as it should.
        stream = getattr(getattr(handler.request, "connection", None), "stream", None)
        if stream is not None and stream.closed():
            return False
        return super().set_handler(handler, start_heartbeat)

    def close(self, code: int = 3000, message: str = "Go away!") -> None:
        if self.state != CLOSED and self.handler is not None and not self.handler.active:
            BaseSession.close(self, code, message)
            return
        super().close(code, message)


class ChatRouter(SockJSRouter):
    """A SockJS router that carries the hub its connections talk to."""

    def __init__(self, hub: Hub, prefix: str, user_settings: dict, io_loop=None) -> None:
        self.hub = hub
        super().__init__(ChatConnection, prefix, user_settings, io_loop=io_loop,
                         session_kls=ChatSession)

    def shutdown(self) -> None:
        """Stop the router's timers (session expiry and stats)."""
        self._sessions_cleanup.stop()
        self.stats._callback.stop()


class ChatConnection(SockJSConnection):
    """One participant's connection, whatever SockJS transport carries it."""

    def __init__(self, session) -> None:
        super().__init__(session)
        self._hub: Hub = session.server.hub
        self._inbox: collections.deque = collections.deque()
        self._worker: asyncio.Future | None = None

    # -- SockJS callbacks --------------------------------------------------

    def on_open(self, info) -> None:
        self._hub.open(self)

    def on_message(self, message) -> None:
        self._inbox.append(message)
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())

    def on_close(self) -> None:
        self._inbox.clear()
        self._hub.close(self)

    # -- the hub's Client interface ---------------------------------------

    def send_text(self, text: str) -> None:
        if not self.is_closed:
            self.session.send_message(text)

    def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        if not self.is_closed:
            self.session.close(code, reason)

    # -- frames ------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            while self._inbox:
                await self._handle(self._inbox.popleft())
        finally:
            self._worker = None

    async def _dispatch(self, command: protocol.Command) -> None:
        if isinstance(command, Say):
            await self._hub.say(self, command.content, command.ref)
        elif isinstance(command, Join):
            await self._hub.join(self, command.email, command.room, command.since)
        else:
            await self._hub.scrollback(self, command.before, command.limit)

    async def _handle(self, message) -> None:
        try:
            if isinstance(message, bytes):
                # Only the raw /websocket endpoint passes binary messages on.
                raise ProtocolError("bad_frame", "frames are text messages, not binary")
            if not isinstance(message, str):
                raise ProtocolError("bad_frame", "a frame must be a JSON object sent as text")
            command = protocol.parse_frame(message)
            try:
                await self._dispatch(command)
            except ProtocolError as error:
                if error.ref is None:
                    error.ref = command.ref
                raise
        except ProtocolError as error:
            self.send_text(protocol.encode(protocol.error_frame(error)))
        except Exception:
            # A bug of ours must not end the connection or leak details to
            # the client; it is logged for us to fix.
            log.exception("unhandled error while handling a frame")
