"""The hub: carries out commands from connections and fans frames out.

It knows connections only as :class:`Client` objects that take text, so it is
tested without a server. Every frame a client receives, but its ``joined``,
goes through :meth:`Hub._send`, which holds frames back while that ``joined``
is still being prepared, and sends them after it minus what its history or
participants already had, so nobody sees a message before their history or
twice.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Hashable
from operator import itemgetter
from typing import NamedTuple, Protocol, cast

from . import protocol
from .backends import retention
from .backends.base import CHANGE, GET_MANY, Backend, OutcomeUnknown, SearchUnavailable, StorageError
from .chat import (
    DELETE,
    EDIT,
    REACT,
    UNREACT,
    Change,
    Message,
    PresenceChange,
    Roster,
    originals_missing,
    quote_of,
    with_quotes,
)
from .frames import LISTED, V1, Wire
from .limits import RateLimiter
from .metrics import Metrics
from .privacy import who
from .protocol import ProtocolError
from .shared_reads import SharedReads

log = logging.getLogger("chatzilla.hub")

#: Most messages a ``join`` with ``since`` catches up on; past it the client
#: gets the newest ones and ``"more": true``.
MAX_CATCH_UP = 1000

#: Changed messages read from storage at a time for a ``changes`` frame (or
#: a join's ``changes``), until the frame is full (see Hub._changed_after).
CHANGES_CHUNK = 25

#: Most bytes of messages one ``joined`` or ``history`` frame carries, counted
#: as they go on the wire (:func:`~chatzilla.protocol.wire_size`); the rest
#: comes with scrollback (``"more": true``). Whatever a room holds, joining
#: it sends a bounded frame: 50 messages of 2000 emoji would be 1.2 MB.
HISTORY_BYTES = 256 * 1024

#: Stands for the participants in a ``joined`` frame until they are put in
#: as text (see Hub._encode_joined), and that stand-in as JSON.
_PARTICIPANTS = "\x00participants\x00"
_PARTICIPANTS_JSON = protocol.encode(_PARTICIPANTS)  # type: ignore[arg-type]

#: Frames held back for one connection while its ``joined`` is prepared
#: (messages and presence of its room meanwhile), and their bytes: past
#: either, the connection is closed with :data:`TOO_SLOW` rather than the
#: server holding a busy room's traffic for a history read that stalls.
MAX_HELD = 1000
MAX_HELD_BYTES = 1 << 20
#: Refs whose outcome was unknown a connection remembers, so that a message
#: stored late is not acknowledged twice on it.
MAX_UNSURE = 256

#: The close frame for a client that cannot keep up (the connection's
#: send queue, or the frames held for it while it joins); it reconnects and
#: catches up with ``since``.
TOO_SLOW = (4008, "Too slow: the client does not read what is sent")

#: A connection's ``typing`` frames are relayed at most once per this many
#: seconds; the ones in between are dropped without a word. Pages send one
#: every 2 seconds while someone types and show it for a few seconds.
TYPING_INTERVAL = 2.0


class Gate(Protocol):
    """What moderation checks (see :mod:`chatzilla.moderating`); None under
    ``--auth open``, where there is none."""

    async def admit(self, room: str, key: str, invite: str | None = None) -> dict:
        """Let ``key`` into ``room`` (``invite``: an invitation link's secret
        the join brought): the fields it adds to ``joined``. Raises
        :class:`ProtocolError` (``banned``, ``not_invited``, ``invalid_invite``,
        ``unavailable``)."""

    def check_say(self, room: str, key: str, ref: str | None) -> None:
        """Raise :class:`ProtocolError` ``muted`` when ``key`` may not speak in ``room``."""

    def muted(self, room: str, key: str) -> bool:
        """Whether ``key`` is muted in ``room`` now (its typing is not relayed)."""

    async def may_enter(self, room: str, key: str | None) -> bool:
        """Whether ``key`` (None: anyone) may join ``room`` as its privacy
        goes (a private room: its invited people and moderators). Raises
        :class:`~chatzilla.backends.base.StorageError`."""

    def known_private(self, room: str) -> bool:
        """Whether ``room`` is private as far as this process has heard (its
        rules as last read or changed); no storage read."""


class Client(Hashable, Protocol):
    """One connection as the hub sees it."""

    def send_text(self, text: str, requested: bool = False, crowd: bool = False) -> None:
        """Queue one encoded frame for this connection; never raises.

        ``requested``: the frame answers the client's own request (its
        ``joined``, a ``history`` page), bounded by the hub; it must not
        count as traffic the client failed to read. ``crowd``: the frame is
        one of a fan-out to a whole room, which may wait behind frames sent
        to one connection (an acknowledgement)."""

    def close(self, code: int, reason: str) -> None:
        """End the connection with a close frame."""


class _Present:
    """Who is present in a room, as far as this process heard (protocol 2's
    ``participants`` pages): the list the backend gave the latest join (its
    presence ``version``) and the changes announced after it, applied only
    when a page is asked for, so that a crowd's joins copy nothing. The list
    by id a page reads is kept and the changes applied to it one by one (a
    room of 10,000 sorted again, each key's id read again, took 35-40 ms of
    the loop for a page asked after any change); each key's id is kept
    across the lists of later joins."""

    __slots__ = ("by_id", "ids", "keys", "pending", "version")

    def __init__(self, keys: list[str], version: int) -> None:
        self.keys = keys  # the backend's list, in arrival order (never changed in place)
        self.version = version
        self.pending: list[PresenceChange] = []
        # (public id, key) of everyone, by id: made for the first page.
        self.by_id: list[tuple[str, str]] | None = None
        self.ids: dict[str, str] = {}  # key -> public id, of those in by_id

    def renewed(self, keys: list[str], version: int) -> _Present:
        """This room's knowledge after a join whose backend listed ``keys``
        at ``version``: that list, with the changes heard that came after it."""
        if version and version < self.version:
            return self  # an older list than what is known
        fresh = _Present(keys, version)
        fresh.pending = [c for c in self.pending if c.version > version] if version else []
        fresh.ids = self.ids
        return fresh

    def heard(self, change: PresenceChange) -> None:
        """A change announced to the room; ignored when the list has it."""
        if change.version and change.version <= self.version:
            return
        self.pending.append(change)
        if len(self.pending) > 1000:
            self.by_id = None  # made again for the next page
            self.current()

    def ordered(self, id_of: Callable[[str], str]) -> list[tuple[str, str]]:
        """(public id, key) of everyone present now, by id."""
        ids = self.ids
        if self.by_id is None:
            known = {key: ids.get(key) or id_of(key) for key in self.current()}
            self.ids = known  # only those present
            self.by_id = sorted((public, key) for key, public in known.items())
            return self.by_id
        if self.pending:
            changes = self.pending
            self.current()
            by_id = self.by_id
            for change in changes:
                key = change.email
                entry = (ids.get(key) or id_of(key), key)
                at = bisect.bisect_left(by_id, entry)
                there = at < len(by_id) and by_id[at] == entry
                if change.event == "join":
                    if not there:
                        by_id.insert(at, entry)
                        ids[key] = entry[0]
                elif there:
                    del by_id[at]
                    ids.pop(key, None)
        return self.by_id

    def current(self) -> list[str]:
        """Everyone present now, in the order they came."""
        if self.pending:
            keys = dict.fromkeys(self.keys)
            for change in self.pending:
                if change.event == "join":
                    keys[change.email] = None
                else:
                    keys.pop(change.email, None)
                self.version = max(self.version, change.version)
            self.keys, self.pending = list(keys), []
        return self.keys


class _Announced(NamedTuple):
    """A presence change waiting in its room's batch (protocol 2)."""

    number: int  # the hub's count of changes with this one
    change: PresenceChange
    origin: object  # the connection whose join or leave it was, if one of ours


@dataclasses.dataclass(slots=True)
class _Member:
    # Slots, and no dict until one is needed: one per connection, and a
    # crowd's connections are mostly idle (about 130 bytes each saved).
    email: str
    room: str
    address: str | None = None  # the client's, as per-address limits count it
    # Refs whose outcome this connection was told is unknown (the newest
    # MAX_UNSURE) -> whether their `sent` went out since: it goes once.
    # None until the first.
    unsure: dict[str, bool] | None = None
    # Frames held back until `joined` is out: (message id or None, presence
    # version or 0, text).
    held: list[tuple[int | None, int, str]] | None = dataclasses.field(default_factory=list)
    held_bytes: int = 0
    # Messages up to this id were in `joined.history`. A durable backend's
    # reader can see a commit before the writer's delivery reaches the loop,
    # so such a message may still arrive live afterwards: it is dropped.
    seen: int = 0
    # Likewise for presence: changes up to this version were already in
    # `joined.participants` (another process's news can arrive late).
    presence_seen: int = 0
    # Whether the backend counted it present (or may have): only then does
    # it hear of its leave. A connection that ends before (while its join
    # waits on moderation or on the backend) leaves when it is counted, with
    # `left_at_once` as its leave had it (see Hub._entered).
    entered: bool = False
    left_at_once: bool = False
    # The hub's count of presence changes when this member came into its
    # room's roster: a batch (protocol 2) flushed later skips what came before.
    since_change: int = 0


class Hub:
    """The chat of one process.

    ``history_limit`` messages go in ``joined.history``, and at most
    ``history_bytes`` bytes of messages in a ``joined`` or ``history`` frame;
    ``max_content`` is
    the longest message accepted; at most ``max_rooms`` rooms have people in
    them at once; ``messages`` limits how fast each e-mail address sends,
    across all its connections (no limit when None). ``clock`` (monotonic
    seconds) times the throttle of ``typing`` frames, one per connection per
    ``typing_interval`` seconds. ``wire`` writes people into frames:
    addresses (protocol 1, ``--auth open``) or names and ids (protocol 2).

    Presence changes go out at once, one frame each, under protocol 1; under
    protocol 2 (:attr:`Wire.batches_presence`) those of one loop turn in a
    room share one frame, sent at the end of the turn, or before any other
    frame of that room, so nobody sees the room's frames in another order.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        history_limit: int,
        max_content: int,
        max_rooms: int | None = None,
        max_rooms_per_address: int | None = None,
        messages: RateLimiter | None = None,
        typing_interval: float = TYPING_INTERVAL,
        history_bytes: int = HISTORY_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wire: Wire = V1,
        metrics: Metrics | None = None,
    ) -> None:
        self._backend = backend
        #: Moderation's checks at join, message and typing; set by the app
        #: factory under ``--auth link``.
        self.gate: Gate | None = None
        self._wire = wire
        #: What this hub counts for /metrics (the app's; a hub of its own by default).
        self.metrics = metrics or Metrics()
        self._history_limit = history_limit
        self._history_bytes = history_bytes
        self._max_content = max_content
        self._max_rooms = max_rooms
        self._max_rooms_per_address = max_rooms_per_address
        #: Client address -> its joined connections per room.
        self._rooms_of: dict[str, collections.Counter[str]] = {}
        self._messages = messages
        # A bucket of one token per connection, refilled over the interval.
        self._typing = RateLimiter(1 / typing_interval, 1, clock)
        self._clients: set[Client] = set()
        self._members: dict[Client, _Member] = {}
        self._rosters: dict[str, Roster[Client]] = {}
        self._closing = False  # set by close_all: the server is shutting down
        # Protocol 2: room -> who is present there (for participants pages).
        self._present: dict[str, _Present] = {}
        # The last joined frame's participants, encoded (see _encode_joined).
        self._participants_text: tuple[tuple[str, tuple[str, ...]], str] | None = None
        # The joins of a room share reads of its newest messages.
        self._newest = SharedReads(self._read_newest)
        # Presence changes announced so far (numbers the batched ones), and
        # room -> the changes of this turn waiting to go out (protocol 2).
        self._changes_seen = 0
        self._batches: dict[str, list[_Announced]] = {}
        backend.start(self._deliver, self._announce)

    # -- connections -------------------------------------------------------

    def open(self, client: Client) -> None:
        """A connection opened (it has not joined yet)."""
        self._clients.add(client)

    def close(self, client: Client) -> None:
        """A connection ended, however it ended. Safe to call twice. Its
        person stays present for the backend's grace period."""
        self._clients.discard(client)
        self._leave(client)

    def leave(self, client: Client) -> None:
        """The ``leave`` frame: ``client`` leaves its room now, and may join
        again on the same connection. Nothing happens if it had not joined.
        The room hears it at once, with no grace period: the person said so."""
        self._leave(client, at_once=True)

    def _leave(self, client: Client, at_once: bool = False) -> None:
        self._typing.forget(client)
        member = self._drop_member(client)
        if member is None:
            return
        if member.entered:
            self._backend.leave(member.room, member.email, client, at_once)
        else:
            # Not counted yet: a leave now would be lost (or, in a backend
            # that counts by person, taken off another tab of theirs); the
            # join tells the backend once it has counted it.
            member.left_at_once = at_once

    def _entered(self, client: Client, member: _Member) -> bool:
        """The backend counted ``member`` present (or may have): from now on
        its leave goes to the backend. False when ``client`` ended (or left)
        meanwhile: the backend is told of that leave now."""
        member.entered = True
        if self._members.get(client) is member:
            return True
        self._backend.leave(member.room, member.email, client, member.left_at_once)
        return False

    def _drop_member(self, client: Client) -> _Member | None:
        """Forget ``client`` in this hub (its room's roster too), not in the
        backend; returns what it was, or None if it had not joined."""
        member = self._members.pop(client, None)
        if member is None:
            return None
        roster = self._rosters[member.room]
        roster.remove(client)
        if not roster:
            del self._rosters[member.room]
            self._present.pop(member.room, None)  # no more news of it reaches this process
        if member.address is not None:
            rooms = self._rooms_of[member.address]
            rooms[member.room] -= 1
            if rooms[member.room] <= 0:
                del rooms[member.room]
                if not rooms:
                    del self._rooms_of[member.address]
        return member

    def _forget_member(self, client: Client, member: _Member, entered: bool) -> None:
        """Undo a join that failed, if ``member`` is still ``client``'s;
        ``entered``: the backend may have counted it, and hears of the leave
        (a backend ignores a leave it never counted)."""
        if entered and not member.entered and not self._entered(client, member):
            return  # gone meanwhile: the backend has just heard of it
        if self._members.get(client) is not member:
            return  # already gone (the connection closed meanwhile)
        if entered:
            self._leave(client)
        else:
            self._drop_member(client)

    def close_where(self, chosen: Callable[[Client], bool], code: int, reason: str) -> None:
        """Close with a close frame every connection ``chosen`` picks (the
        connections of a session that signed out)."""
        for client in [c for c in self._clients if chosen(c)]:
            client.close(code, reason)

    def close_all(self, code: int, reason: str) -> None:
        """Close every connection with a close frame (server shutting down).

        Nobody is told that the others leave: everyone is going, and a
        presence frame would only race the close frame on the wire.
        """
        self._closing = True
        for client in list(self._clients):
            try:
                client.close(code, reason)
            except Exception:
                # One broken connection must not keep the rest open.
                log.exception("could not close a connection during shutdown")

    # -- commands ----------------------------------------------------------

    async def join(
        self,
        client: Client,
        raw_email: str | None,
        raw_room: str | None = None,
        since: int | None = None,
        *,
        address: str | None = None,
        verified: str | None = None,
        rev: int | None = None,
        invite: str | None = None,
    ) -> None:
        """Enter a room; sends ``joined`` to ``client``, presence to the others.

        ``raw_room`` None is the lobby, and ``joined`` then has no ``room``
        field, exactly as in protocol version 1. ``history`` holds the room's
        last ``history_limit`` messages or, with ``since``, every message
        after that id (up to :data:`MAX_CATCH_UP`).
        ``address`` is the client's (as per-address limits count it): it may
        have people in at most ``max_rooms_per_address`` rooms at once.
        ``verified`` is a signed-in person's key
        (:meth:`~chatzilla.identity.Person.key`), which the connection
        established; without it, ``raw_email`` is the key.
        ``rev`` (a client that follows changes): ``joined`` says the room's
        latest change id, and with ``since`` lists the messages changed
        after ``rev`` (``changes``, up to :data:`MAX_CATCH_UP`).
        ``invite``: an invitation link's secret, for the gate.
        Raises :class:`ProtocolError` ``already_joined``, ``invalid_email``,
        ``invalid_room``, ``too_many_rooms`` (never for the lobby) or
        ``unavailable`` (history could not be read).
        """
        if client not in self._clients:
            return  # it ended before its join was taken up (while its session was looked up)
        member = self._admit(client, raw_email, raw_room, address, verified)
        # Checked once registered, frames held: a ban given meanwhile either
        # is in the store by now or reaches this member and closes it.
        extra = await self._let_in(client, member, invite)
        if self._members.get(client) is not member:
            return  # it ended (or was banned) meanwhile: never counted present
        # Whatever goes wrong from here (a bug of ours included), the member
        # is rolled back: a half-joined connection would stay present and
        # hold every frame of the room.
        participants = await self._enter(client, member)
        if not self._entered(client, member):
            return  # it ended while its presence was recorded
        history, truncated = await self._read_history(client, member, since)
        changes = await self._read_changes(client, member, since, rev)
        if self._members.get(client) is not member:
            return  # the connection ended while history was read
        self._send_joined(
            client,
            member,
            participants,
            history,
            since,
            truncated,
            named_room=raw_room is not None,
            changes=changes,
            extra=extra,
        )

    def _admit(
        self,
        client: Client,
        raw_email: str | None,
        raw_room: str | None,
        address: str | None,
        verified: str | None = None,
    ) -> _Member:
        """Check the join and register ``client`` as a member of its room in
        this hub, its frames held from now on. Registered before history is
        read: a message stored meanwhile is held for this client, and dropped
        if history has it already. Raises :class:`ProtocolError`
        ``already_joined``, ``invalid_email``, ``invalid_room`` or
        ``too_many_rooms``, having registered nothing."""
        if client in self._members:
            raise ProtocolError("already_joined", "this connection has already joined")
        email = verified if verified is not None else protocol.normalize_email(raw_email or "")
        room = protocol.DEFAULT_ROOM if raw_room is None else protocol.check_room(raw_room)
        self._check_room_limits(room, address)
        member = self._members[client] = _Member(email, room, address, since_change=self._changes_seen)
        self._rosters.setdefault(room, Roster[Client]()).add(client, email)
        if self._wire.listed is not None and room not in self._present:
            # Heard from now on: a change announced while this first join
            # of the room waits for the backend's list may be newer than it.
            self._present[room] = _Present([], 0)
        if address is not None:
            self._rooms_of.setdefault(address, collections.Counter())[room] += 1
        return member

    async def _let_in(self, client: Client, member: _Member, invite: str | None = None) -> dict:
        """The gate's fields for ``joined``; rolls the member back (it is not
        in the backend yet) and raises when the gate refuses."""
        if self.gate is None:
            return {}
        try:
            return await self.gate.admit(member.room, member.email, invite)
        except BaseException:
            self._forget_member(client, member, entered=False)
            raise

    async def _enter(self, client: Client, member: _Member) -> list[str]:
        """Count the member present in the backend (the others hear of it);
        returns the room's participants. Rolls the member back and raises
        :class:`ProtocolError` ``unavailable`` when presence cannot be recorded."""
        try:
            participants, member.presence_seen = await self._backend.enter(member.room, member.email, client)
            if self._wire.listed is not None and member.room in self._rosters:
                present = self._present.get(member.room)
                self._present[member.room] = (
                    _Present(participants, member.presence_seen)
                    if present is None
                    else present.renewed(participants, member.presence_seen)
                )
        except StorageError:
            # Not in the backend: it must not hear of a leave.
            self._forget_member(client, member, entered=False)
            raise ProtocolError("unavailable", "the chat cannot record who is here now; join again") from None
        except BaseException:
            # Perhaps counted: told of the leave, which it ignores if not.
            self._forget_member(client, member, entered=True)
            raise
        return participants

    async def _read_history(
        self, client: Client, member: _Member, since: int | None
    ) -> tuple[list[Message], bool]:
        """The room's last ``history_limit + 1`` messages or, with ``since``, up
        to ``MAX_CATCH_UP + 1`` after it (one more than is sent, to tell
        whether there are more), and whether retention removed any that
        would have come (see :meth:`_removed`). Rolls the member back (out of the
        backend too) and raises :class:`ProtocolError` ``unavailable`` when
        they cannot be read."""
        try:
            if since is None:
                return await self._newest.get(member.room)
            history = await self._quoted(
                member.room, await self._backend.page(member.room, since, None, MAX_CATCH_UP + 1)
            )
            return history, len(history) <= MAX_CATCH_UP and await self._removed(
                member.room, history, since, None
            )
        except StorageError:
            self._forget_member(client, member, entered=True)
            raise ProtocolError("unavailable", "the room's history cannot be read now; join again") from None
        except BaseException:
            self._forget_member(client, member, entered=True)
            raise

    async def _read_changes(
        self, client: Client, member: _Member, since: int | None, rev: int | None
    ) -> tuple[list[dict], bool, int] | None:
        """For a client that follows changes (``rev``): the ``changed``
        frames after ``rev`` and whether more remain (with ``since``; see
        :meth:`_changed_after`), and the room's latest change id. Rolls the
        member back and raises ``unavailable`` as :meth:`_read_history` does."""
        if rev is None:
            return None
        try:
            if since is None:
                return [], False, (await self._backend.changes(member.room, rev, 0))[1]
            return await self._changed_after(member.room, rev)
        except StorageError:
            self._forget_member(client, member, entered=True)
            raise ProtocolError("unavailable", "the room's history cannot be read now; join again") from None
        except BaseException:
            self._forget_member(client, member, entered=True)
            raise

    async def _read_newest(self, room: str) -> tuple[list[Message], bool]:
        """The room's last ``history_limit + 1`` messages and whether
        retention removed any, for a join; shared by the joins of a crowd
        (``self._newest``, :mod:`chatzilla.shared_reads`): a few reads, not
        10,000. Each of them registered its member before the read it gets
        started (whatever is stored after it is held for them, and nothing
        falls between)."""
        count = self._history_limit
        history = await self._quoted(room, await self._backend.page(room, None, None, count + 1))
        return history, len(history) <= count and await self._removed(room, history, None, None)

    def _send_joined(
        self,
        client: Client,
        member: _Member,
        participants: list[str],
        history: list[Message],
        since: int | None,
        truncated: bool,
        named_room: bool,
        changes: tuple[list[dict], bool, int] | None = None,
        extra: dict | None = None,
    ) -> None:
        """Send ``joined`` (with ``room`` when the join named one; with
        ``"more": true`` when older messages, after ``since``, were left out;
        with ``rev``, and after ``since`` ``changes``, for a client that
        follows changes), then the frames held meanwhile that it does not
        already hold."""
        joined = self._wire.joined(member.email)
        if named_room:
            joined["room"] = member.room
        joined["participants"] = _PARTICIPANTS  # see _encode_joined
        listed = self._wire.listed
        if listed is not None:
            # Protocol 2: the first people present, and how many there are;
            # the rest in participants pages (a crowd's joins would each be
            # 150 KB of persons).
            joined["present"] = len(participants)
            participants = participants[:listed]
        frames, more = self._fit(history, self._history_limit if since is None else MAX_CATCH_UP)
        joined["history"] = frames
        if more:
            joined["more"] = True
        elif truncated:
            joined["truncated"] = True
        if changes is not None:
            changed, changes_more, joined["rev"] = changes
            if since is not None:
                joined["changes"] = changed
                if changes_more:
                    joined["changes_more"] = True
        joined.update(extra or {})
        client.send_text(self._encode_joined(joined, member.room, participants), requested=True)
        member.seen = history[-1].id if history else (since or 0)
        held, member.held = member.held or [], None
        for message_id, version, text in held:
            self._send(client, text, message_id, version)

    def _encode_joined(self, joined: dict, room: str, participants: list[str]) -> str:
        """``joined``'s text, its ``participants`` encoded once for the joins
        that list the same people: a crowd joining a room lists the same
        1,000 people thousands of times (150 KB of persons under protocol 2)."""
        key = (room, tuple(participants))
        if self._participants_text is None or self._participants_text[0] != key:
            listed = protocol.encode(self._wire.participants(participants))  # type: ignore[arg-type]
            self._participants_text = (key, listed)
        # The marker comes before anything a client wrote (history, changes),
        # and no address, name or room holds a NUL.
        return protocol.encode(joined).replace(_PARTICIPANTS_JSON, self._participants_text[1], 1)

    def _check_room_limits(self, room: str, address: str | None) -> None:
        """Raise ``too_many_rooms`` when joining ``room`` would put this
        server past ``max_rooms``, or ``address`` past ``max_rooms_per_address``.
        The lobby is never refused: it is where everyone can always go."""
        if room == protocol.DEFAULT_ROOM:
            return
        if (
            self._max_rooms is not None
            and room not in self._rosters
            and len(self._rosters) >= self._max_rooms
        ):
            raise ProtocolError(
                "too_many_rooms",
                f"this server has {len(self._rosters)} rooms "
                "in use, its most; join a room that has people in it",
            )
        rooms = self._rooms_of.get(address or "", ())
        limit = self._max_rooms_per_address
        if address is not None and limit is not None and room not in rooms and len(rooms) >= limit:
            raise ProtocolError(
                "too_many_rooms",
                f"your address is in {len(rooms)} rooms already, its most; leave one first",
            )

    async def scrollback(self, client: Client, before: int | None, limit: int) -> None:
        """Send a ``history`` frame: up to ``limit`` messages older than
        ``before``, with ``"truncated": true`` when nothing older is left
        because retention removed it.

        Raises :class:`ProtocolError` ``not_joined`` or ``unavailable``.
        """
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before asking for history")
        try:
            messages = await self._quoted(
                member.room, await self._backend.page(member.room, None, before, limit + 1)
            )
            truncated = len(messages) <= limit and await self._removed(member.room, messages, None, before)
        except StorageError:
            raise ProtocolError("unavailable", "history cannot be read now; try again") from None
        frames, more = self._fit(messages, limit)
        frame = {"type": "history", "messages": frames, "more": more}
        if before is not None:
            frame["before"] = before
        if truncated and not more:
            frame["truncated"] = True
        self._send(client, protocol.encode(frame), requested=True)

    def participants(self, client: Client, after: str | None) -> None:
        """Send a ``participants`` page (protocol 2): up to
        :attr:`Wire.listed` of the people present in the client's room, by
        public id, those after ``after`` (an id; None: from the first), how
        many are present, and whether more ids follow. Raises
        :class:`ProtocolError` ``not_joined``."""
        member = self._members.get(client)
        if member is None or member.held is not None:
            raise ProtocolError("not_joined", "join before asking who is here")
        limit = self._wire.listed or LISTED
        present = self._present.get(member.room) or _Present([], 0)
        by_id = present.ordered(lambda key: str(self._wire.who(key).get("id") or ""))
        start = 0 if after is None else bisect.bisect_right(by_id, after, key=itemgetter(0))
        frame: dict = {"type": "participants"}
        if after is not None:
            frame["after"] = after
        frame["people"] = [self._wire.who(key) for _, key in by_id[start : start + limit]]
        frame["present"] = len(by_id)
        frame["more"] = start + limit < len(by_id)
        self._send(client, protocol.encode(frame), requested=True)

    async def _removed(self, room: str, page: list[Message], after: int | None, before: int | None) -> bool:
        """Whether retention removed messages asked for (``after < id <
        before``) that are older than all of ``page`` (the newest of them).
        Ids are contiguous, so only a gap below the page needs asking the
        backend. Raises :class:`StorageError`."""
        lower = after or 0
        if page and page[0].id <= lower + 1:
            return False
        first, last = await self._backend.bounds(room)
        return retention.truncated(first, last, lower, before)

    async def _quoted(self, room: str, messages: list[Message]) -> list[Message]:
        """``messages`` with what each reply among them quotes of the message
        it answers, as that message is now (edited, deleted; none when
        retention removed it): read from ``messages`` themselves when the
        page holds it, else from the backend in one read (get_many: for a
        catch-up of 1000 replies to 1000 older messages on SQLite, 14 ms
        where a get each took 199, holding the one reader thread; the page
        itself 8; load 15). Raises :class:`StorageError`."""
        missing = originals_missing(messages)
        read: list[Message] = []
        for start in range(0, len(missing), GET_MANY):
            read += await self._backend.get_many(room, missing[start : start + GET_MANY])
        return with_quotes(messages, read)

    def _fit(self, messages: list[Message], limit: int) -> tuple[list[dict], bool]:
        """The frames of the newest of ``messages`` (oldest first, as a page
        returns them, one more than ``limit`` when there are more) that fit
        in ``limit`` and in ``history_bytes`` on the wire, at least one; and
        whether any were left out."""
        frames: list[dict] = []
        size = 0
        for message in reversed(messages[-limit:] if limit else []):
            frame = self._wire.message(message)
            size += protocol.wire_size(protocol.encode(frame)) + 1  # and its comma
            if frames and size > self._history_bytes:
                break
            frames.append(frame)
        frames.reverse()
        return frames, len(frames) < len(messages)

    def _fit_first(
        self, messages: list[Message], limit: int, build: Callable[[Message], dict]
    ) -> tuple[list[dict], bool]:
        """The frames (``build``) of the first of ``messages`` that fit in
        ``limit`` and ``history_bytes``, at least one; and whether any were
        left out (changes: the client asks for the rest after the last
        ``rev`` it got; search results: older than the last)."""
        frames: list[dict] = []
        size = 0
        for message in messages[:limit]:
            frame = build(message)
            size += protocol.wire_size(protocol.encode(frame)) + 1
            if frames and size > self._history_bytes:
                break
            frames.append(frame)
        return frames, len(frames) < len(messages)

    def _changed_frame(self, message: Message) -> dict:
        frame = self._wire.message(message)
        frame["type"] = "changed"
        return frame

    async def changes(self, client: Client, after: int) -> None:
        """Send a ``changes`` frame: the messages changed after change id
        ``after``, in the order of their changes (up to
        :data:`MAX_CATCH_UP`, ``"more": true`` when more remain), and the
        room's latest change id. Raises ``not_joined`` or ``unavailable``."""
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before asking for changes")
        try:
            frames, more, rev = await self._changed_after(member.room, after)
        except StorageError:
            raise ProtocolError("unavailable", "changes cannot be read now; try again") from None
        frame = {"type": "changes", "after": after, "messages": frames, "more": more, "rev": rev}
        self._send(client, protocol.encode(frame), requested=True)

    async def _changed_after(self, room: str, after: int) -> tuple[list[dict], bool, int]:
        """The ``changed`` frames of the messages of ``room`` changed after
        change id ``after``, in the order of their changes, as many as fit
        in :data:`MAX_CATCH_UP` and ``history_bytes`` (at least one);
        whether more remain; and the room's latest change id. Read
        :data:`CHANGES_CHUNK` at a time, until the frame is full: a read of
        all 1000 when 10 large ones fill it cost a quarter of a second of
        the storage's reader for each ``changes`` frame. Raises :class:`StorageError`."""
        frames: list[dict] = []
        size = 0
        latest: int | None = None
        while True:
            chunk, rev = await self._backend.changes(room, after, CHANGES_CHUNK + 1)
            chunk = await self._quoted(room, chunk)
            if latest is None:
                latest = rev  # read before the first chunk: changes past it are news all the same
            for message in chunk[:CHANGES_CHUNK]:
                frame = self._changed_frame(message)
                size += protocol.wire_size(protocol.encode(frame)) + 1  # and its comma
                if frames and (size > self._history_bytes or len(frames) >= MAX_CATCH_UP):
                    return frames, True, latest
                frames.append(frame)
            if len(chunk) <= CHANGES_CHUNK:
                return frames, False, latest
            after = chunk[CHANGES_CHUNK - 1].rev

    async def search(
        self, client: Client, raw_q: str, before: int | None, limit: int, ref: str | None
    ) -> None:
        """Send a ``search`` frame: up to ``limit`` of the newest messages of
        the room older than ``before`` holding every word of ``raw_q``,
        newest first, with ``"more": true`` when older ones may match.
        Raises :class:`ProtocolError` ``not_joined``, ``invalid_query``,
        ``search_unavailable`` (the backend has no full-text search) or
        ``unavailable``."""
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before searching", ref)
        words = protocol.search_words(raw_q, ref)
        try:
            found = await self._quoted(
                member.room, await self._backend.search(member.room, words, before, limit + 1)
            )
        except SearchUnavailable:
            raise ProtocolError(
                "search_unavailable", "this server keeps messages where it cannot search them", ref
            ) from None
        except StorageError:
            raise ProtocolError("unavailable", "the search cannot be done now; try again", ref) from None
        frames, more = self._fit_first(found, limit, self._wire.message)
        answer: dict = {"type": "search", "q": raw_q, "messages": frames, "more": more}
        if before is not None:
            answer["before"] = before
        if ref is not None:
            answer["ref"] = ref
        self._send(client, protocol.encode(answer), requested=True)

    async def edit(self, client: Client, message_id: int, raw_content: str, ref: str | None) -> None:
        """Edit the sender's own message ``message_id`` to ``raw_content``:
        everyone in the room (in every process) receives its new state as a
        ``changed`` frame, and so does ``client``, with ``ref``, as the answer.
        Editing it to the text it has already changes nothing (so a retry is
        harmless) and is answered the same way.

        Raises :class:`ProtocolError` ``not_joined``, ``muted`` (an edit says
        something new, as a message does), ``rate_limited`` (edits count as
        messages), ``empty``, ``too_long``, ``not_found`` (no such message in
        the room, or deleted), ``not_yours`` or ``unavailable``.
        """
        member = self._member_changing(client, ref, says=True)
        try:
            content = protocol.clean_content(raw_content, self._max_content)
        except ProtocolError as error:
            error.ref = ref
            raise
        await self._check_owner(member, message_id, ref)
        after = await self._apply(member.room, message_id, Change(EDIT, content=content), ref)
        if after.deleted:
            raise ProtocolError("not_found", f"message {message_id} was deleted", ref)
        self._answer_change(client, after, ref)

    async def delete(self, client: Client, message_id: int, ref: str | None) -> None:
        """Delete the sender's own message ``message_id``: it keeps its id
        and place, with no content, and everyone receives it as a
        ``changed`` frame (``client`` as the answer, with ``ref``). Deleting a
        deleted message is answered the same way and changes nothing.
        Raises as :meth:`edit` does (but ``empty`` and ``too_long``)."""
        member = self._member_changing(client, ref)
        await self._check_owner(member, message_id, ref)
        after = await self._apply(member.room, message_id, Change(DELETE), ref)
        self._answer_change(client, after, ref)

    async def react(
        self, client: Client, message_id: int, raw_emoji: str, remove: bool, ref: str | None
    ) -> None:
        """Add (or with ``remove`` take back) the sender's reaction
        ``raw_emoji`` to any message of the room: everyone receives the
        message's new state as a ``changed`` frame, ``client`` as the answer
        with ``ref``. Reacting twice, or taking back what is not there,
        changes nothing and is answered the same way.

        Raises :class:`ProtocolError` ``not_joined``, ``muted`` (a new
        reaction is shown to the room as a message is; taking one back is
        allowed), ``rate_limited``,
        ``invalid_emoji``, ``too_many_reactions`` (a message has at most
        :data:`~chatzilla.protocol.MAX_REACTIONS` different ones),
        ``not_found`` (no such message, or deleted) or ``unavailable``."""
        member = self._member_changing(client, ref, says=not remove)
        emoji = protocol.check_emoji(raw_emoji, ref)
        try:
            message = await self._backend.get(member.room, message_id)
        except StorageError:
            raise ProtocolError("unavailable", "the message cannot be read now; try again", ref) from None
        if message is None or message.deleted:
            raise ProtocolError("not_found", f"room {member.room} has no message {message_id}", ref)
        kinds = dict(message.reactions)
        if not remove and emoji not in kinds and len(kinds) >= protocol.MAX_REACTIONS:
            raise ProtocolError(
                "too_many_reactions",
                f"message {message_id} has {len(kinds)} different reactions, its most: add to one of them",
                ref,
            )
        # Who reacted is kept as their key; a person renamed since (protocol
        # 2) is the same person: their earlier key stands for them.
        me = self._wire.owner(member.email)
        who = next(
            (key for keys in kinds.values() for key in keys if self._wire.owner(key) == me),
            member.email,
        )
        if not remove and who not in kinds.get(emoji, ()) and self._too_big(message, emoji, who):
            raise ProtocolError(
                "too_many_reactions",
                f"message {message_id} holds as many reactions as one message can: add none to it",
                ref,
            )
        change = Change(UNREACT if remove else REACT, emoji=emoji, who=who)
        after = await self._apply(member.room, message_id, change, ref)
        if after.deleted:
            raise ProtocolError("not_found", f"message {message_id} was deleted", ref)
        self._answer_change(client, after, ref)

    async def delete_message(
        self,
        room: str,
        message_id: int,
        *,
        actor: str,
        reason: str,
        answer: Client | None = None,
        ref: str | None = None,
    ) -> Message:
        """Delete message ``message_id`` of ``room`` whoever sent it (a
        moderator's delete, ``actor`` the key of who does it, ``reason`` for
        the log): the same change as the sender's own :meth:`delete`, which
        everyone in the room receives (``answer``, the moderator's
        connection, as the answer to its frame, with ``ref``). Returns the
        message after it. Raises :class:`ProtocolError` ``not_found`` or ``unavailable``."""
        after = await self._apply(room, message_id, Change(DELETE), ref)
        if answer is not None:
            self._answer_change(answer, after, ref)
        log.info("message %d of room %s deleted by %s: %s", message_id, room, who(actor, log), reason)
        return after

    def _too_big(self, message: Message, emoji: str, who: str) -> bool:
        """Whether ``message``'s frame would pass
        :data:`~chatzilla.protocol.MAX_MESSAGE_BYTES` on the wire once
        ``who`` reacted with ``emoji``."""
        size = protocol.wire_size(protocol.encode(self._changed_frame(message)))
        size += protocol.wire_size(protocol.encode(self._wire.who(who))) + 1
        if emoji not in dict(message.reactions):
            size += protocol.wire_size(protocol.encode({"emoji": emoji, "count": 1, "people": []})) + 1
        return size > protocol.MAX_MESSAGE_BYTES

    def _member_changing(self, client: Client, ref: str | None, says: bool = False) -> _Member:
        """The member about to change a message, within the flood limits of
        its messages; ``says``: the change says something (an edit), which
        a muted person may not. Raises ``not_joined``, ``muted`` or ``rate_limited``."""
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before changing messages", ref)
        if says and self.gate is not None:
            self.gate.check_say(member.room, member.email, ref)
        self.count_as_message(member.email, ref)
        return member

    def count_as_message(self, key: str, ref: str | None) -> None:
        """Count a frame of ``key``'s person against the flood limit of its
        messages (changes and reports count so). Raises ``rate_limited``
        when over it: then nothing of the frame is done."""
        if self._messages is not None:
            wait = self._messages.take(key)
            if wait:
                raise protocol.rate_limited(wait, f"messages from {key}", ref)

    async def _check_owner(self, member: _Member, message_id: int, ref: str | None) -> None:
        """Raise ``not_found`` or ``not_yours`` unless ``member`` sent message
        ``message_id`` of its room. (A message never changes sender, so the
        check holds when the change is applied.)"""
        try:
            message = await self._backend.get(member.room, message_id)
        except StorageError:
            raise ProtocolError("unavailable", "the message cannot be read now; try again", ref) from None
        if message is None:
            raise ProtocolError("not_found", f"room {member.room} has no message {message_id}", ref)
        mine = self._wire.owner(member.email)
        if not mine or self._wire.owner(message.sender) != mine:
            raise ProtocolError("not_yours", f"message {message_id} is someone else's", ref)

    async def _apply(self, room: str, message_id: int, change: Change, ref: str | None) -> Message:
        try:
            after, done = await self._backend.change(room, message_id, change)
        except StorageError:
            raise ProtocolError("unavailable", "the change could not be stored; send it again", ref) from None
        if after is None:
            raise ProtocolError("not_found", f"room {room} has no message {message_id}", ref)
        if done:
            self.metrics.changes.inc()
        return after

    def _answer_change(self, client: Client, message: Message, ref: str | None) -> None:
        frame = self._changed_frame(message)
        if ref is not None:
            frame["ref"] = ref
        self._send(client, protocol.encode(frame))

    async def say(
        self, client: Client, raw_content: str, ref: str | None, reply_to: int | None = None
    ) -> None:
        """Store a message, send it to the room, acknowledge it with ``sent``.
        With ``reply_to``, it replies to that message of the room: its frame
        says so, with what it quotes of it (see :func:`~chatzilla.chat.quote_of`).

        Raises :class:`ProtocolError` ``not_joined``, ``rate_limited`` (the
        address sends faster than allowed: nothing is stored or sent),
        ``empty``, ``too_long``, ``not_found`` (the room has no message
        ``reply_to``, or no longer keeps it), ``unavailable`` (nothing was
        stored) or ``outcome_unknown`` (it may have been: if so, its ``sent``
        follows when it is seen stored; a retry with the same ref is safe).
        """
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before sending messages", ref)
        if self.gate is not None:
            self.gate.check_say(member.room, member.email, ref)
        if self._messages is not None:
            wait = self._messages.take(member.email)
            if wait:
                raise protocol.rate_limited(wait, f"messages from {member.email}", ref)
        try:
            content = protocol.clean_content(raw_content, self._max_content)
        except ProtocolError as error:
            error.ref = ref
            raise
        quote = None
        if reply_to is not None:
            try:
                original = await self._backend.get(member.room, reply_to)
            except StorageError:
                raise ProtocolError(
                    "unavailable", "the message replied to cannot be read now; try again", ref
                ) from None
            if original is None:
                raise ProtocolError(
                    "not_found", f"room {member.room} has no message {reply_to} to reply to", ref
                )
            quote = quote_of(original)
        started = time.monotonic()
        try:
            message, duplicate = await self._backend.append(
                member.room, member.email, content, ref, client, reply_to=reply_to or 0, quote=quote
            )
        except OutcomeUnknown:
            if ref is not None:
                if member.unsure is None:
                    member.unsure = {}
                member.unsure.setdefault(ref, False)
                if len(member.unsure) > MAX_UNSURE:
                    del member.unsure[next(iter(member.unsure))]
            raise ProtocolError(
                "outcome_unknown",
                "the server cannot tell whether the message was stored; send it again with the same ref",
                ref,
            ) from None
        except StorageError:
            raise ProtocolError(
                "unavailable", "the message could not be stored; send it again", ref
            ) from None
        self.metrics.store_seconds.observe(time.monotonic() - started)
        if duplicate:
            # A retried ref: acknowledged again with its first id; it was
            # stored and delivered only once. (A new message's `sent` goes
            # out with its delivery, in _deliver.)
            self._ack(client, message, live=False)
        else:
            self.metrics.messages_in.inc()

    def _ack(self, client: Client, message: Message, live: bool) -> None:
        """Send ``client`` the ``sent`` of its ``message``. A message whose
        outcome this connection was told is unknown is acknowledged once: by
        its late delivery or by the answer to its retry, whichever is first,
        so that id is not repeated on the connection (any other retry is
        acknowledged again, every time). ``live``: with the message's
        delivery (dropped like it when this connection's history had it);
        else answering a retry (sent even so: the page waits for it)."""
        member = self._members.get(client)
        if member is not None and member.unsure and message.ref is not None and message.ref in member.unsure:
            if member.unsure[message.ref]:
                return
            member.unsure[message.ref] = True
        self._send(client, protocol.encode(message.ack()), message.id if live else None)

    def typing(self, client: Client) -> None:
        """Tell the others in the room that ``client``'s person is typing.

        Relays ``{"type": "typing", "email": ...}`` to every connection in
        the room but the typist's own (their other tabs know already). At
        most one frame per connection per ``typing_interval`` is relayed;
        the rest are dropped, silently: they are not errors. Nothing is
        stored. Raises :class:`ProtocolError` ``not_joined``.
        """
        member = self._members.get(client)
        if member is None:
            raise ProtocolError("not_joined", "join before saying you are typing")
        if self._typing.take(client) or (
            self.gate is not None and self.gate.muted(member.room, member.email)
        ):
            return
        roster = self._rosters[member.room]
        self._presence_first(member.room)
        text = protocol.encode(self._wire.typing(member.email))
        for other in roster.connections():
            if roster.email_of(other) != member.email:
                self._send(other, text, crowd=True)

    # -- fan-out -----------------------------------------------------------

    def _deliver(self, room: str, message: Message, origin: object) -> None:
        roster = self._rosters.get(room)
        if roster is None:
            return
        self._presence_first(room)
        if origin is CHANGE:
            # A change to a stored message: its news to everyone here. Never
            # dropped as seen: a client's history may hold the message as
            # it was before (clients keep a message's highest rev).
            text = protocol.encode(self._changed_frame(message))
            for client in roster.connections():
                self._send(client, text, crowd=True)
            return
        # The sender's `sent` goes out here, in the same pass as everyone
        # else's copy, so every connection sees ids in strictly increasing
        # order whether they arrive as acknowledgements or messages. It
        # goes first: its connection is then among the first written to.
        text = protocol.encode(self._wire.message(message))
        connections = roster.connections()
        sender = cast(Client, origin)  # the connection that sent it, when it is one of ours
        if origin is not None and roster.email_of(sender) is not None:
            self._ack(sender, message, live=True)
        members, message_id = self._members, message.id
        for client in connections:
            if client is origin:
                continue
            member = members.get(client)
            if member is None or (member.held is None and message_id > member.seen):
                client.send_text(text, crowd=True)  # what _send would do, for most of a crowd
            else:
                self._send(client, text, message_id, crowd=True)
        self.metrics.messages_out.inc()
        self.metrics.deliveries.inc(len(connections))

    def _announce(self, room: str, change: PresenceChange, origin: object) -> None:
        """A backend's presence change: tell this process's people in the room."""
        if origin is not None:
            log.info("%s %s (room %s, %d present)", change.event, who(change.email, log), room, change.count)
        roster = self._rosters.get(room)
        if roster is None or self._closing:
            # Nobody here to tell; or shutting down, when a presence frame
            # would only race the close frame on the wire.
            return
        present = self._present.get(room)
        if present is not None:
            present.heard(change)
        if not self._wire.batches_presence:
            self._announce_one(roster, change, origin)
            return
        self._changes_seen += 1
        batch = self._batches.get(room)
        if batch is None:
            batch = self._batches[room] = []
            asyncio.get_running_loop().call_soon(self._flush_presence, room)
        batch.append(_Announced(self._changes_seen, change, origin))

    def _announce_one(self, roster: Roster[Client], change: PresenceChange, origin: object) -> None:
        text = protocol.encode(self._wire.presence(change))
        members, version = self._members, change.version
        for client in roster.connections():
            if client is origin:
                continue
            member = members.get(client)
            if member is None or (member.held is None and (not version or version > member.presence_seen)):
                client.send_text(text, crowd=True)  # what _send would do, for most of a crowd
            else:
                self._send(client, text, version=version, crowd=True)

    def _flush_presence(self, room: str) -> None:
        """Send ``room``'s batch of presence changes, if one waits: a
        connection gets every change but its own, those from before it came
        into the room and those its ``joined`` had already."""
        batch = self._batches.pop(room, None)
        roster = self._rosters.get(room)
        if batch is None or roster is None or self._closing:
            return
        first, origins = batch[0].number, {a.origin for a in batch}
        if all(a.change.version for a in batch):
            # In the room's order, so the last count is the room's: changes
            # shared between processes may arrive in another.
            batch.sort(key=lambda a: a.change.version)
        oldest = min(a.change.version for a in batch)
        texts: dict[tuple[int, ...], str] = {}  # which changes -> their frame

        def text_of(picked: tuple[int, ...]) -> str:
            text = texts.get(picked)
            if text is None:
                text = texts[picked] = protocol.encode(
                    self._wire.presence_batch([batch[i].change for i in picked])
                )
            return text

        everything = tuple(range(len(batch)))
        members = self._members
        for client in roster.connections():
            member = members.get(client)
            if member is None:
                continue
            if (
                member.held is None
                and member.since_change < first
                and client not in origins
                and (not oldest or oldest > member.presence_seen)
            ):
                client.send_text(text_of(everything), crowd=True)  # most of a crowd
                continue
            # A member still joining is filtered by version as its held frames go out.
            seen = -1 if member.held is not None else member.presence_seen
            picked = tuple(
                i
                for i, a in enumerate(batch)
                if a.number > member.since_change
                and a.origin is not client
                and (not a.change.version or a.change.version > seen)
            )
            if not picked:
                continue
            versions = {batch[i].change.version for i in picked}
            if versions == {0} or member.held is None:
                self._send(client, text_of(picked), version=min(versions), crowd=True)
            else:
                # Held until `joined` is out, then each change filtered by
                # what its participants had (another process's news).
                for i in picked:
                    self._send(client, text_of((i,)), version=batch[i].change.version, crowd=True)

    def _presence_first(self, room: str) -> None:
        """Send ``room``'s waiting presence changes before another frame of it."""
        if room in self._batches:
            self._flush_presence(room)

    def _send(
        self,
        client: Client,
        text: str,
        message_id: int | None = None,
        version: int = 0,
        requested: bool = False,
        crowd: bool = False,
    ) -> None:
        member = self._members.get(client)
        if member is not None:
            if member.held is not None:
                member.held.append((message_id, version, text))
                member.held_bytes += len(text)
                if len(member.held) > MAX_HELD or member.held_bytes > MAX_HELD_BYTES:
                    log.info("closing a connection whose join stalled: %d frames held", len(member.held))
                    member.held = None
                    self._leave(client)
                    client.close(*TOO_SLOW)
                return
            if message_id is not None and message_id <= member.seen:
                return  # already in this client's history
            if version and version <= member.presence_seen:
                return  # already in this client's participants
        client.send_text(text, requested, crowd)

    # -- moderation --------------------------------------------------------

    def member_of(self, client: Client) -> tuple[str, str] | None:
        """``(room, key)`` of a joined connection, else None."""
        member = self._members.get(client)
        return None if member is None else (member.room, member.email)

    def present_here(self) -> list[tuple[str, str]]:
        """``(room, key)`` of every joined connection of this process, each pair once."""
        return sorted({(m.room, m.email) for m in self._members.values()})

    def tell_room(
        self,
        room: str,
        frame: dict,
        skip: object = None,
        skip_key: str | None = None,
        only: Callable[[str], bool] | None = None,
    ) -> None:
        """Send ``frame`` to every connection of ``room`` in this process but
        ``skip`` and those of ``skip_key`` (with ``only``: those whose key it picks)."""
        roster = self._rosters.get(room)
        if roster is None:
            return
        self._presence_first(room)
        text = protocol.encode(frame)
        for client in roster.connections():
            key = roster.email_of(client) or ""
            if client is not skip and key != skip_key and (only is None or only(key)):
                self._send(client, text, crowd=True)

    def message_frame(self, message: Message) -> dict:
        """``message`` as frames show it (protocol 1 or 2)."""
        return self._wire.message(message)

    def tell_one(self, client: Client, frame: dict) -> None:
        """Send ``frame`` to ``client`` alone."""
        self._send(client, protocol.encode(frame))

    def close_in_room(self, room: str, chosen: Callable[[str], bool], code: int, reason: str) -> int:
        """Take out of ``room`` at once, and close with a close frame, every
        connection whose key ``chosen`` picks; returns how many."""
        roster = self._rosters.get(room)
        if roster is None:
            return 0
        picked = [c for c in roster.connections() if chosen(roster.email_of(c) or "")]
        loop = asyncio.get_running_loop()
        for client in picked:
            self._leave(client, at_once=True)
            # After this turn's frames (the ones saying why) are written.
            loop.call_soon(client.close, code, reason)
        return len(picked)

    # -- figures -----------------------------------------------------------

    def room_count(self) -> int:
        """Rooms with someone in them in this process."""
        return len(self._rosters)

    def stats(self) -> dict[str, int]:
        """Open connections and participants (counted once per room), for ``/healthz``."""
        return {
            "connections": len(self._clients),
            "participants": sum(len(r) for r in self._rosters.values()),
        }
