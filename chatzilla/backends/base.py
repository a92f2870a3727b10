"""The Backend contract: what the hub needs from storage and fan-out.

A backend stores messages, gives them their ids and timestamps, and reports
every newly stored message to the hub through the ``deliver`` callback, which
fans it out to the connections of this process. It also counts who is
present in each room, over every process that shares it, and reports each
presence change through the ``announce`` callback. A person whose last
connection closes stays present for a grace period (``grace`` seconds): one
who comes back within it (a reload, a room switch and back, a restart of the
server) was never away for anyone else. The hub and the connections never
know which backend runs (see :mod:`chatzilla.backends`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ..chat import Change, Message, PresenceChange, Quote

#: ``deliver(room, message, origin)``: ``origin`` is the opaque token the
#: sender passed to :meth:`Backend.append` (so the hub can acknowledge to the
#: sending connection and skip it), or None when the message came from
#: another process; or :data:`CHANGE` for no new message but the news of a
#: change to a stored one (:meth:`Backend.change`): its state after it.
Deliver = Callable[[str, Message, object], None]

#: The ``origin`` of a change's delivery.
CHANGE = object()

#: ``announce(room, change, origin)``: someone's first connection entered or
#: last one left a room (``change.event`` is "join" or "leave"); ``origin`` is
#: the key given to :meth:`Backend.enter` or :meth:`Backend.leave`, or None
#: when it happened in another process.
Announce = Callable[[str, PresenceChange, object], None]

log = logging.getLogger("chatzilla.backend")


def deliver_stored(deliver: Deliver | None, room: str, message: Message, origin: object) -> None:
    """Hand a stored message to ``deliver``. A delivery that raises is logged,
    not propagated: the message is stored all the same, and its sender and
    the messages after it (the rest of a batch, of a stream) must still go out."""
    if deliver is None:
        return
    try:
        deliver(room, message, origin)
    except Exception:
        log.exception("could not deliver message %d of room %s", message.id, room)


#: How long a message's ``ref`` identifies it for retries, in seconds: a
#: client that lost an acknowledgement retries well within this.
DEDUP_WINDOW = 600.0


#: Most ids one :meth:`Backend.get_many` reads (a catch-up's page of 1001
#: messages may quote as many others).
GET_MANY = 1024


class StorageError(Exception):
    """The backend could not store or read; the message was not accepted."""


class SearchUnavailable(Exception):
    """The backend has no full-text search (Redis alone)."""


class OutcomeUnknown(StorageError):
    """The backend cannot tell whether the message was stored: the command
    reached its server, whose answer never came (Redis slow or paused). If
    it was, it is delivered (and acknowledged to its sender) when the
    backend sees it; a retry with the same ``ref`` gets its first id."""


class Backend(Protocol):
    """What the hub needs from storage and fan-out."""

    def start(self, deliver: Deliver, announce: Announce) -> None:
        """Begin reporting stored messages and presence changes."""

    @property
    def healthy(self) -> bool:
        """False while the backend cannot store or read (e.g. its server is down)."""

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        """Count connection ``key`` of ``email`` as present in ``room``.

        Returns the room's participants afterwards, in arrival order, each
        once, and the room's presence version then: a change announced later
        with a version at or below it happened before, and is not news to
        this connection. Announces a "join" when it is the e-mail's first
        connection. Raises :class:`StorageError` when presence cannot be
        recorded.
        """

    def leave(self, room: str, email: str, key: object, at_once: bool = False) -> None:
        """Stop counting connection ``key``. When it was the e-mail's last,
        a "leave" is announced after the grace period, unless a connection
        of the e-mail enters the room again within it (then nothing is
        announced at all); ``at_once`` (the person said they leave) skips the
        grace. Never raises; may complete after returning."""

    async def append(
        self,
        room: str,
        sender: str,
        content: str,
        ref: str | None,
        origin: object,
        reply_to: int = 0,
        quote: Quote | None = None,
    ) -> tuple[Message, bool]:
        """Store a message; return it (with id and ``ts``) and ``duplicate``.

        ``reply_to`` (0: none) is the id of the message of the room it
        replies to, stored with it (the caller checked the room has it);
        ``quote``, what it shows of that one now, is not stored but goes
        with the message to ``deliver``, in every process.

        ``duplicate`` is True when ``sender`` already sent ``ref`` to ``room``
        within :data:`DEDUP_WINDOW`: the original message is returned and
        nothing is stored or delivered. Otherwise, when this returns, the
        message is stored, as durably as the backend stores anything (memory:
        not past a restart; SQLite: committed to disk; Redis: in Redis, on
        its disk only as its persistence settings say), and has been passed
        to ``deliver`` in this process, with ``origin``. A backend whose
        delivery comes back from a shared server (Redis: its stream reader)
        waits for it a bounded time only: past that, the message is delivered
        when the reader catches up; and it does not wait for a room that this
        process does not read, or stopped reading meanwhile. Raises
        :class:`StorageError` when it cannot store.
        """

    async def page(self, room: str, after: int | None, before: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` of the newest messages with ``after < id < before``
        (either bound may be None), oldest first. Here and in every read
        (get, changes, search) a reply has its ``reply_to`` and no ``quote``:
        the hub reads the original as it is then."""

    async def get(self, room: str, message_id: int) -> Message | None:
        """Message ``message_id`` of ``room`` as it is now (changes applied),
        or None if the room keeps none of that id. Raises :class:`StorageError`."""

    async def get_many(self, room: str, ids: list[int]) -> list[Message]:
        """The messages of ``room`` with these ids (at most
        :data:`GET_MANY` of them) as they are now, in any order; those it
        keeps none of left out. One read, however many: what replies quote
        (see :meth:`chatzilla.hub.Hub.say`). Raises :class:`StorageError`."""

    async def change(self, room: str, message_id: int, change: Change) -> tuple[Message | None, bool]:
        """Apply ``change`` (an edit, already checked, a delete, a reaction
        added or taken back) to a stored message, atomically, as the room's
        next change id (its ``rev``), by the rule of
        :func:`chatzilla.chat.changed`, the same for every backend.

        Returns the message after it and whether anything changed: nothing
        does when :func:`~chatzilla.chat.changed` says so (a retry) or the
        message is deleted already (an edit or reaction is then refused by
        the caller, seeing ``deleted``), and nothing is stored or delivered
        then; (None, False)
        when the room keeps no message of that id. A change is stored as
        durably as :meth:`append` stores, and passed to ``deliver`` in every
        process that has the room's people (in this one before returning,
        or for a shared backend when its reader sees it). Raises
        :class:`StorageError`. Who may change the message is the caller's
        business (the hub's)."""

    async def changes(self, room: str, after: int, limit: int) -> tuple[list[Message], int]:
        """Up to ``limit`` messages of ``room`` changed by a change whose id
        is above ``after``, in the order of their latest change (oldest
        first; a message changed twice comes once, as it is now), and the
        room's latest change id (0 when none). Messages removed by retention
        are left out. Raises :class:`StorageError`."""

    async def search(self, room: str, words: list[str], before: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` of the newest messages of ``room`` with ``id <
        before`` (None: any) that hold every one of ``words`` (from
        :func:`~chatzilla.protocol.search_words`: case-folded; the last one
        may be the start of a word), newest first, as they are now (deleted
        ones left out). Raises :class:`SearchUnavailable` where the backend
        has no full-text search, :class:`StorageError`."""

    async def bounds(self, room: str) -> tuple[int, int]:
        """``(first, last)``: the lowest id ``room`` still keeps (every lower
        one was removed on purpose, by retention) and its newest id; (1, 0)
        for a room that never had a message. Raises :class:`StorageError`."""

    async def active(self, limit: int) -> list[tuple[str, float]]:
        """Up to ``limit`` rooms with the newest messages, newest first, each
        as ``(room, ts of its newest message)``; rooms that never had one
        are left out. Costs the same however many rooms and messages there
        are (an index of the rooms by their last message, or its like).
        Raises :class:`StorageError`."""

    async def close(self) -> None:
        """Release what the backend holds; safe to call twice."""
