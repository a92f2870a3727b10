"""The chat's domain: messages and who is present. No I/O.

A :class:`Roster` tracks which connections each e-mail has in a room. One
person in two tabs is one participant: presence changes only when an e-mail
gains its first connection or loses its last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Message:
    """A stored chat message. ``id`` is strictly increasing within its room."""

    id: int
    sender: str
    content: str
    ts: float
    ref: str | None = None

    def frame(self) -> dict[str, Any]:
        """The ``message`` frame every other participant receives (no ``ref``)."""
        return {
            "type": "message",
            "id": self.id,
            "sender": self.sender,
            "content": self.content,
            "ts": self.ts,
        }

    def ack(self) -> dict[str, Any]:
        """The ``sent`` acknowledgement for the sending connection."""
        frame: dict[str, Any] = {"type": "sent", "id": self.id, "ts": self.ts}
        if self.ref is not None:
            frame["ref"] = self.ref
        return frame


@dataclasses.dataclass(frozen=True)
class PresenceChange:
    """What a join or leave did: ``event`` is "join" or "leave", or None when
    the e-mail's other connections keep it present (no frame to send)."""

    event: str | None
    email: str
    count: int
    #: Orders the presence changes of a room where processes share it (0
    #: where one process is the whole chat and order is given).
    version: int = 0

    def frame(self) -> dict[str, Any]:
        return {"type": "presence", "event": self.event, "email": self.email, "count": self.count}


class Roster:
    """Who is in one room: e-mail -> the set of that person's connections.

    Connections are opaque hashable keys. :meth:`remove` is idempotent, so a
    connection can be removed however (and however often) it ended.
    """

    def __init__(self) -> None:
        self._by_email: dict[str, set[Hashable]] = {}
        self._email_of: dict[Hashable, str] = {}

    def add(self, conn: Hashable, email: str) -> PresenceChange:
        if conn in self._email_of:
            raise ValueError("connection is already in the roster")
        conns = self._by_email.setdefault(email, set())
        first = not conns
        conns.add(conn)
        self._email_of[conn] = email
        return PresenceChange("join" if first else None, email, len(self._by_email))

    def remove(self, conn: Hashable) -> PresenceChange | None:
        """Forget ``conn``; None if it was not there."""
        email = self._email_of.pop(conn, None)
        if email is None:
            return None
        conns = self._by_email[email]
        conns.discard(conn)
        last = not conns
        if last:
            del self._by_email[email]
        return PresenceChange("leave" if last else None, email, len(self._by_email))

    def participants(self) -> list[str]:
        """E-mails present, each once, in the order they arrived."""
        return list(self._by_email)

    def connections(self) -> list[Hashable]:
        return list(self._email_of)

    def email_of(self, conn: Hashable) -> str | None:
        return self._email_of.get(conn)

    def __len__(self) -> int:
        return len(self._by_email)
