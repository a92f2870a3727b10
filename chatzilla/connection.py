"""The SockJS transport: one :class:`ChatConnection` per SockJS session.

It parses each frame, hands the command to the hub and turns
:class:`~chatzilla.protocol.ProtocolError` into ``error`` frames; the
connection stays open after any error. Frames from one connection are carried
out one after another, in the order they arrived.

It also keeps each connection within the router's limits: frames a second
(``rate_limited``), the largest frame (``too_large``), connections per client
address and joins per address, frames waiting to be handled, and bytes
waiting to be sent to a client that does not read, or to be handled from one
that sends faster than the server carries its frames out (either way the
session is closed with a close frame; the page reconnects and catches up).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging

from sockjs.tornado import SockJSConnection, SockJSRouter, proto
from sockjs.tornado.session import CLOSED, Session

from . import compat, protocol
from .backends.base import StorageError
from .connection_limits import ConnectionLimits
from .frames import V1, V2
from .hub import TOO_SLOW, Hub
from .moderating import Moderation
from .outbox import Outbox
from .protocol import (
    Change,
    Changes,
    Join,
    Leave,
    Moderate,
    Participants,
    ProtocolError,
    Reaction,
    Rooms,
    Say,
    Search,
    Typing,
)
from .proxies import address_key
from .rooms_list import RoomsList
from .settings import Settings
from .signin import SESSION_COOKIE, SignIn
from .transports import Backlog, guard_urls, waiting_bytes, write_frames

log = logging.getLogger("chatzilla.connection")

#: What a waiting frame costs besides its text, in bytes, so that a flood of
#: empty frames fills the inbox too.
FRAME_OVERHEAD = 64

# SockJS close frames (code, reason); browsers reconnect after each.
#: Its browser signed out (Leave, in this tab or another): it chats as nobody now.
SIGNED_OUT = (4401, "Signed out")
TOO_MANY_CONNECTIONS = (4029, "Too many connections from your address")
TOO_MUCH_AT_ONCE = (4029, "Too much sent at once")
#: More than IGNORED_BURST frames sent after rate_limited (see chatzilla.connection_limits).
RATE_LIMIT_IGNORED = (4029, "Too many frames: rate_limited was ignored")
#: The largest ``leave`` frame exempt from the rate limit, in bytes.
LEAVE_SIZE = 1024
#: The context heartbeats run in (asyncio copies the current one for each
#: timer otherwise); they need none.
HEARTBEAT_CONTEXT = contextvars.Context()


class ChatSession(Session):
    """sockjs-tornado's session, with two races of its polling transports
    fixed, and packets that are not lists taken as one frame.

    Closing: 1.0.7 writes the close frame into the current handler even when a polling
    response has already been written and is finishing: a second write that
    overflows Content-Length (an exception) or, chunked, two callbacks in one
    JSONP response. Here the close frame waits for the next poll instead,
    which sockjs-tornado answers with it once the session is closed. (A
    streaming response is not finishing: it takes the close frame at once.)

    Heartbeats: one asyncio timer a session, in a context of its own, and
    cancelled when they stop. 1.0.7's go through its periodic Callback and
    Tornado's add_timeout: that object, a partial, a bound method, a copy of
    the current context and the timer, about 900 bytes a session (at 10,000
    idle connections, 9 MB), and a stopped one stays in the loop's timers,
    holding its session, until it would have fired.
    """

    #: The pending heartbeat's timer while heartbeats run, else None.
    heartbeat_timer: asyncio.TimerHandle | None = None
    #: A later time (the loop's) the pending heartbeat was put off to, if any.
    heartbeat_due: float | None = None

    def start_heartbeat(self) -> None:
        self.stop_heartbeat()
        self._heartbeat_in(self.server.settings["heartbeat_delay"])

    def stop_heartbeat(self) -> None:
        timer = self.heartbeat_timer
        if timer is not None:
            timer.cancel()
            self.heartbeat_timer = None

    def delay_heartbeat(self) -> None:
        if self.heartbeat_timer is not None:
            self.heartbeat_due = self._loop().time() + self.server.settings["heartbeat_delay"]

    def _loop(self) -> asyncio.AbstractEventLoop:
        return self.server.io_loop.asyncio_loop

    def _heartbeat_in(self, delay: float) -> None:
        self.heartbeat_timer = self._loop().call_later(delay, self._beat, context=HEARTBEAT_CONTEXT)

    def _beat(self) -> None:
        timer, due = self.heartbeat_timer, self.heartbeat_due
        self.heartbeat_due = None
        if due is not None and due > self._loop().time():
            self._heartbeat_in(due - self._loop().time())
            return
        if self.handler is None:
            self.heartbeat_timer = None
            return
        try:
            self.handler.send_pack(proto.HEARTBEAT)
        except Exception:
            log.exception("could not send a heartbeat")
        if self.heartbeat_timer is timer:  # not stopped (or started anew) meanwhile
            self._heartbeat_in(self.server.settings["heartbeat_delay"])

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
        handler = self.handler
        if (
            self.state != CLOSED
            and handler is not None
            and not handler.active
            and not compat.streaming_handler(handler)
        ):
            compat.close_session_quietly(self, code, message)
            return
        # A streaming response (xhr-streaming, eventsource) takes the close
        # frame after what it is writing, on the same response: a session
        # closed right after opening sends o, then c[...], as SockJS asks.
        super().close(code, message)

    def on_messages(self, msg_list) -> None:
        # A packet should be a list of frames; 1.0.7 iterates whatever JSON
        # an xhr_send body holds (a string character by character, a number
        # not at all: a logged traceback). Anything else is one frame here.
        super().on_messages(msg_list if isinstance(msg_list, (list, tuple)) else [msg_list])


class ChatRouter(SockJSRouter):
    """A SockJS router that carries the hub its connections talk to, what
    answers their ``rooms`` frames, and the
    :class:`~chatzilla.connection_limits.ConnectionLimits` they share."""

    def __init__(
        self,
        hub: Hub,
        prefix: str,
        user_settings: dict,
        settings: Settings,
        rooms_list: RoomsList,
        io_loop=None,
        signin: SignIn | None = None,
    ) -> None:
        self.hub = hub
        #: Who may join (``--auth link``), or None: anyone, as any address.
        self.signin = signin
        #: Moderation (``--auth link``), set by the app factory; else None.
        self.moderation: Moderation | None = None
        #: The protocol its connections speak: 2 with sign-in, else 1.
        self.wire = V1 if signin is None else V2
        #: Answers ``rooms`` frames.
        self.rooms_list = rooms_list
        self.allowed_origins = settings.allowed_origins
        self.limits = ConnectionLimits(settings)
        super().__init__(ChatConnection, prefix, user_settings, io_loop=io_loop, session_kls=ChatSession)
        compat.replace_transport_handlers(self, guard_urls)
        # call_soon, not add_callback: the latter is the thread-safe kind,
        # which costs a wake-up write per call.
        self.outbox = Outbox(self.io_loop.asyncio_loop.call_soon)

    def signed_out(self, session_cookie: str) -> None:
        """Close this process's connections opened with ``session_cookie``,
        which just signed out: a tab still open (or a stolen cookie's
        connection) must not go on chatting as its person."""
        self.hub.close_where(lambda c: getattr(c, "session_cookie", None) == session_cookie, *SIGNED_OUT)

    def shutdown(self) -> None:
        """Stop the router's timers (session expiry and stats)."""
        compat.stop_router_timers(self)


class ChatConnection(SockJSConnection):
    """One participant's connection, whatever SockJS transport carries it."""

    def __init__(self, session) -> None:
        super().__init__(session)
        self._router: ChatRouter = session.server
        self._hub: Hub = session.server.hub
        self._limits: ConnectionLimits = session.server.limits
        # Made on the first frame: an empty deque is most of a kilobyte, and
        # most connections are idle most of the time.
        self._inbox: collections.deque | None = None
        self._inbox_bytes = 0
        self._worker: asyncio.Future | None = None
        self._address: str | None = None  # counted in the limits while set
        # The session cookie of the request that opened the connection
        # (every transport sends it: the page is same-origin).
        self._session_cookie: str | None = None
        # Frames for the outbox's next flush, and whether they wait only
        # behind a crowd (kept by chatzilla.outbox.Outbox.add).
        self.outbox_frames: str | list[str] | None = None
        self.outbox_crowd = False
        # Bytes of frames the client asked for (its `joined`, history pages)
        # that may still wait to be sent, and those queued this turn: they
        # are not counted against max_queued (see flush).
        self._asked = 0
        self._asked_now = 0
        self._closing = False
        self._transport: str | None = None  # counted in the metrics while set

    @property
    def session_cookie(self) -> str | None:
        """The session cookie the connection was opened with (``--auth link``)."""
        return self._session_cookie

    # -- SockJS callbacks --------------------------------------------------

    def on_open(self, info) -> None:
        # Every per-address limit counts an IPv6 client by its /64.
        address = address_key(info.ip)
        if not self._limits.open(address):
            log.info(
                "refused a connection from %s: %d open already", address, self._limits.open_from(address)
            )
            self.close(*TOO_MANY_CONNECTIONS)
            return
        self._address = address
        cookie = info.get_cookie(SESSION_COOKIE)
        self._session_cookie = cookie.value if cookie is not None else None
        # The transport that opened the session (sockjs-tornado's handlers
        # name themselves), for /metrics' connections by transport.
        self._transport = getattr(getattr(self.session, "handler", None), "name", "unknown")
        self._hub.metrics.transports[self._transport] += 1
        self._hub.open(self)

    def on_message(self, message) -> None:
        if self._closing:
            return
        size = FRAME_OVERHEAD + (len(message) if isinstance(message, (str, bytes)) else 0)
        if self._inbox_bytes + size > self._limits.max_queued:
            log.info(
                "closing a connection from %s: more than %d bytes of frames waiting",
                self._address,
                self._limits.max_queued,
            )
            self._close_soon(TOO_MUCH_AT_ONCE)
            return
        self._inbox_bytes += size
        if self._inbox is None:
            self._inbox = collections.deque()
        self._inbox.append((message, size))
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())

    def on_close(self) -> None:
        if self._transport is not None:
            transports = self._hub.metrics.transports
            transports[self._transport] -= 1
            if transports[self._transport] <= 0:
                del transports[self._transport]
            self._transport = None
        self._inbox = None
        self._inbox_bytes = 0
        self._hub.close(self)
        self._limits.close(self, self._address)
        self._address = None

    # -- the hub's Client interface ---------------------------------------

    def send_text(self, text: str, requested: bool = False, crowd: bool = False) -> None:
        # Written at the end of this loop turn, with the connection's other
        # frames of the turn (see chatzilla.outbox). Whether the session
        # closed meanwhile is asked there, once a turn: it takes two
        # properties of sockjs-tornado's, 40% of this call's time, and a
        # message to a crowd calls it 10,000 times in a row.
        if self._closing:
            return
        if requested:
            self._asked_now += protocol.wire_size(text)
        self._router.outbox.add(self, text, crowd)

    def flush(self, cache: dict) -> None:
        """Write the frames queued this turn; ``cache`` shares packets' bytes."""
        waiting, self.outbox_frames = self.outbox_frames, None
        if waiting is None or self._closing:
            return
        session = self.session
        if session.is_closed:
            return
        limit = self._limits.max_queued
        if self._asked or self._asked_now:
            limit += self._allowance()
        try:
            write_frames(session, waiting, cache, limit)
        except Backlog as backlog:
            # A client that does not read must not make the server hold on
            # to everything said meanwhile. It reconnects and catches up.
            log.info(
                "closing a connection from %s that does not read: %d bytes waiting",
                self._address,
                backlog.waiting,
            )
            compat.drop_queued(self.session)
            self._hub.metrics.slow_closes.inc()
            self._close_soon(TOO_SLOW)

    def _allowance(self) -> int:
        """Bytes that may wait for the client besides ``max_queued``: what it
        asked for. A join or a history page into a busy room must never be
        what closes it. The allowance lasts until everything queued before
        has gone out, and is bounded, so a client that asks for page after
        page and reads none is still closed."""
        if self._asked and not waiting_bytes(self.session):
            self._asked = 0
        if self._asked_now:
            self._asked = min(self._asked + self._asked_now, self._limits.max_asked)
            self._asked_now = 0
        return self._asked

    def close(self, code: int = 3000, reason: str = "Go away!") -> None:
        if not self.is_closed:
            self.session.close(code, reason)

    def _close_soon(self, close_frame: tuple[int, str]) -> None:
        # Not at once: this runs inside the hub's fan-out or sockjs-tornado's
        # packet loop, which must not see the connection leave under them.
        self._closing = True
        self._inbox = None
        self._inbox_bytes = 0
        self._router.io_loop.add_callback(self.close, *close_frame)

    # -- frames ------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            while self._inbox:
                message, size = self._inbox.popleft()
                if not self._inbox:
                    self._inbox = None
                self._inbox_bytes -= size
                await self._handle(message)
                # A frame refused at once never yields to the loop: give the
                # other connections their turn between frames.
                await asyncio.sleep(0)
        finally:
            self._worker = None

    async def _dispatch(self, command: protocol.Command) -> None:
        if isinstance(command, Say):
            await self._hub.say(self, command.content, command.ref, command.reply_to)
        elif isinstance(command, Join):
            wait = self._limits.join(self._address)
            if wait:
                raise protocol.rate_limited(wait, f"joins from {self._address}", command.ref)
            verified = await self._identify(command) if self._router.signin is not None else None
            await self._hub.join(
                self,
                command.email,
                command.room,
                command.since,
                address=self._address,
                verified=verified,
                rev=command.rev,
                invite=command.invite,
            )
        elif isinstance(command, Change):
            if command.content is None:
                try:
                    await self._hub.delete(self, command.id, command.ref)
                except ProtocolError as error:
                    # Someone else's: a moderator's to delete, perhaps.
                    if error.code != "not_yours" or self._router.moderation is None:
                        raise
                    await self._router.moderation.delete(self, command, error)
            else:
                await self._hub.edit(self, command.id, command.content, command.ref)
        elif isinstance(command, Search):
            await self._hub.search(self, command.q, command.before, command.limit, command.ref)
        elif isinstance(command, Reaction):
            await self._hub.react(self, command.id, command.emoji, command.remove, command.ref)
        elif isinstance(command, Changes):
            await self._hub.changes(self, command.after)
        elif isinstance(command, Typing):
            self._hub.typing(self)
        elif isinstance(command, Rooms):
            await self._router.rooms_list.answer(self, command)
        elif isinstance(command, Leave):
            self._hub.leave(self)
        elif isinstance(command, Participants):
            self._hub.participants(self, command.after)
        elif isinstance(command, Moderate):
            # Parsed in protocol 2 only, where the router has moderation.
            assert self._router.moderation is not None
            await self._router.moderation.act(self, command)
        else:
            await self._hub.scrollback(self, command.before, command.limit)

    async def _identify(self, join: Join) -> str:
        """Who joins under ``--auth link``: the bot whose token the frame
        carries, else the person the connection's session cookie names.
        Raises ``invalid_token``, ``sign_in_required`` or ``unavailable``."""
        signin = self._router.signin
        assert signin is not None
        try:
            if join.token is not None:
                person = await signin.bot(join.token)
                if person is None:
                    raise ProtocolError(
                        "invalid_token", "this bot token is not known (or was revoked)", join.ref
                    )
            else:
                person = await signin.session(self._session_cookie)
                if person is None:
                    raise ProtocolError(
                        "sign_in_required",
                        "sign in first: open the chat's page and ask for a sign-in link "
                        "(a bot sends its token in the join frame)",
                        join.ref,
                    )
        except StorageError:
            raise ProtocolError(
                "unavailable", "sign-in cannot be checked now; join again", join.ref
            ) from None
        return person.key()

    def _parse(self, message) -> protocol.Command:
        if isinstance(message, bytes):
            # Only the raw /websocket endpoint passes binary messages on.
            raise ProtocolError("bad_frame", "frames are text messages, not binary")
        if not isinstance(message, str):
            raise ProtocolError("bad_frame", "a frame must be a JSON object sent as text")
        size = protocol.utf8_size(message)
        if size > self._limits.max_frame:
            raise ProtocolError(
                "too_large",
                f"a frame has at most {self._limits.max_frame} bytes, this one has {size}; it was dropped",
            )
        wait = self._limits.frame(self)
        if not wait:
            return protocol.parse_frame(message, self._router.wire.version)
        # Refused unread: parsing a flood only to refuse it costs as much as
        # carrying it out. Only its ref is looked for, at its ends.
        kind, ref = protocol.peek(message)
        if kind == "leave" and size <= LEAVE_SIZE:
            # Leaving is never refused for speed: it only ever ends
            # something, and a page must be sure it is out of the room once
            # it says so. (A leave is a few bytes; a padded one is refused.)
            return protocol.parse_frame(message, self._router.wire.version)
        if self._limits.ignores_refusals(self):
            log.info("closing a connection from %s that ignores rate_limited", self._address)
            self._close_soon(RATE_LIMIT_IGNORED)
        raise protocol.rate_limited(wait, "frames", ref)

    async def _handle(self, message) -> None:
        ref = None
        try:
            command = self._parse(message)
            ref = command.ref
            await self._dispatch(command)
        except ProtocolError as error:
            if error.ref is None:
                error.ref = ref
            self._hub.metrics.refused.labels(error.code).inc()
            self.send_text(protocol.encode(protocol.error_frame(error)))
        except Exception:
            # A bug of ours must not end the connection or leak details to
            # the client; it is logged for us to fix.
            log.exception("unhandled error while handling a frame")
            self._hub.metrics.refused.labels("internal").inc()
            self.send_text(
                protocol.encode(
                    protocol.error_frame(
                        ProtocolError(
                            "internal",
                            "the server failed on this frame; it may or may not have been carried out",
                            ref,
                        )
                    )
                )
            )
