"""Presence counted in this process, for the embedded backends (memory, SQLite)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from ..chat import PresenceChange, Roster
from ..privacy import who
from .base import Announce, Deliver

log = logging.getLogger("chatzilla.backend")


class LocalPresence:
    """Presence counted in this process, for the embedded backends, where
    this process is the whole chat. Announces synchronously (a leave after
    the grace period, from a timer on the running loop). Keeps the two
    callbacks :meth:`start` is given, for the subclass's messages too.

    ``grace`` is the grace period in seconds (0: a leave is announced at once).
    """

    def __init__(self, grace: float = 0.0) -> None:
        self._grace = grace
        self._rosters: dict[str, Roster] = {}
        self._deliver: Deliver | None = None
        self._announce: Announce | None = None
        # (room, e-mail) -> the timer that ends their grace period.
        self._lingering: dict[tuple[str, str], asyncio.TimerHandle] = {}
        # Numbers every change, so a join tells the hub which changes its
        # participants count: another join may be announced while this one
        # waits between coming into the hub's room and being counted here
        # (the moderation gate), and its joined must not hear of it again.
        self._version = 0

    def start(self, deliver: Deliver, announce: Announce) -> None:
        self._deliver = deliver
        self._announce = announce

    @property
    def healthy(self) -> bool:
        return True

    async def enter(self, room: str, email: str, key: object) -> tuple[list[str], int]:
        self._stop_lingering(room, email)
        roster = self._rosters.setdefault(room, Roster())
        if roster.lingering(email):
            log.info("back %s (room %s, within the grace period)", who(email, log), room)
        change = roster.add(key, email)
        if change.event is not None and self._announce is not None:
            self._announce(room, self._numbered(change), key)
        return roster.participants(), self._version

    def leave(self, room: str, email: str, key: object, at_once: bool = False) -> None:
        roster = self._rosters.get(room)
        linger = self._grace > 0 and not at_once
        if roster is None:
            return
        change = roster.remove(key, linger)
        if change is None:
            return
        if linger and roster.lingering(email):
            self._linger(room, email, self._grace)
        if not roster:
            del self._rosters[room]
        if change.event is not None and self._announce is not None:
            self._announce(room, self._numbered(change), key)

    def linger(self, room: str, email: str, seconds: float) -> None:
        """Count ``email`` present in ``room`` with no connection for
        ``seconds``: someone expected back (after a restart)."""
        self._rosters.setdefault(room, Roster()).linger(email)
        self._linger(room, email, seconds)

    def participants(self) -> list[tuple[str, str]]:
        """(room, e-mail) of everyone present, lingering or not, in order."""
        return [(room, email) for room, roster in self._rosters.items() for email in roster.participants()]

    def _linger(self, room: str, email: str, seconds: float) -> None:
        self._stop_lingering(room, email)
        # The loop the app runs on (not running yet while the app is built).
        loop = asyncio.get_event_loop()
        self._lingering[(room, email)] = loop.call_later(seconds, self._expire, room, email)

    def _stop_lingering(self, room: str, email: str) -> None:
        timer = self._lingering.pop((room, email), None)
        if timer is not None:
            timer.cancel()

    def _expire(self, room: str, email: str) -> None:
        """The grace period of ``email`` in ``room`` is over: they left."""
        self._lingering.pop((room, email), None)
        roster = self._rosters.get(room)
        change = roster.expire(email) if roster is not None else None
        if change is None:
            return
        if not roster:
            del self._rosters[room]
        if self._announce is not None:
            self._announce(room, self._numbered(change), None)

    def _numbered(self, change: PresenceChange) -> PresenceChange:
        self._version += 1
        return dataclasses.replace(change, version=self._version)

    def _stop_presence(self) -> None:
        """No more announcements: every grace period stops where it is."""
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
