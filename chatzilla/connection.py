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

from . import protocol
from .hub import Hub
from .protocol import Join, ProtocolError, Say

log = logging.getLogger("chatzilla.connection")


class ChatRouter(SockJSRouter):
    """A SockJS router that carries the hub its connections talk to."""

    def __init__(self, hub: Hub, prefix: str, user_settings: dict, io_loop=None) -> None:
        self.hub = hub
        super().__init__(ChatConnection, prefix, user_settings, io_loop=io_loop)

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
                # The raw /websocket endpoint passes binary messages as bytes.
                try:
                    message = message.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProtocolError("bad_frame", "a frame must be UTF-8 text") from None
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
