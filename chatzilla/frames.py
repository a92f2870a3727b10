"""How people appear in server frames: protocol 1 or protocol 2. No I/O.

The hub knows each participant by a *key*, a string: under ``--auth open``
the address itself, under ``--auth link`` the person's public self as
:meth:`chatzilla.identity.Person.key` makes it. :data:`V1` writes the
version 1 frames exactly (addresses in ``email`` and ``sender``);
:data:`V2` writes ``{id, name, avatar}`` objects in their place (``you``,
``person``, ``sender``), so no frame ever carries another person's address.
"""

from __future__ import annotations

import functools
from typing import Any

from .chat import Message, PresenceChange
from .identity import public_of

#: Most people a protocol 2 ``joined`` lists, and a ``participants`` page.
LISTED = 100


class Wire:
    """Protocol 1: people are their addresses (``docs/protocol.md``)."""

    version = 1
    #: Whether the presence changes of one loop turn share a frame
    #: (:meth:`presence_batch`); version 1 sends each as it comes.
    batches_presence = False
    #: Most people a ``joined`` lists (None: everyone present), the rest
    #: asked for in ``participants`` pages; version 1 lists everyone.
    listed: int | None = None

    def who(self, key: str) -> Any:
        """A participant as frames show them."""
        return key

    def joined(self, key: str) -> dict[str, Any]:
        """The start of a ``joined`` frame for ``key``."""
        return {"type": "joined", "email": key}

    def participants(self, keys: list[str]) -> list[Any]:
        """The ``participants`` of a ``joined``: here the keys themselves (a
        copy, without a call per person: a crowd's join lists 1,000)."""
        return list(keys)

    def message(self, message: Message) -> dict[str, Any]:
        return message.frame()

    def presence(self, change: PresenceChange) -> dict[str, Any]:
        return change.frame()

    def presence_batch(self, changes: list[PresenceChange]) -> dict[str, Any]:
        """One ``presence`` frame for ``changes``: the one change's own frame,
        or ``changes``, each such a frame without its ``type``."""
        if len(changes) == 1:
            return self.presence(changes[0])
        frames = [self.presence(change) for change in changes]
        for frame in frames:
            del frame["type"]
        return {"type": "presence", "changes": frames}

    def owner(self, key: str) -> str:
        """Who ``key`` is when it comes to owning a message: the address
        (protocol 1), the person's public id (protocol 2, whatever name they
        had then); "" for no one (an unverified sender's message under
        protocol 2 is no one's)."""
        return key

    def typing(self, key: str) -> dict[str, Any]:
        return {"type": "typing", "email": key}


class WireV2(Wire):
    """Protocol 2: people are ``{id, name, avatar}``, never an address."""

    version = 2
    batches_presence = True
    listed = LISTED

    def who(self, key: str) -> Any:
        return _public(key)

    def joined(self, key: str) -> dict[str, Any]:
        return {"type": "joined", "protocol": 2, "you": self.who(key)}

    def participants(self, keys: list[str]) -> list[Any]:
        return [self.who(key) for key in keys]

    def owner(self, key: str) -> str:
        return str(self.who(key).get("id") or "")

    def message(self, message: Message) -> dict[str, Any]:
        frame = message.frame()
        frame["sender"] = self.who(message.sender)
        for reaction in frame.get("reactions", ()):
            reaction["people"] = [self.who(key) for key in reaction["people"]]
        if "reply" in frame:
            frame["reply"]["sender"] = self.who(frame["reply"]["sender"])
        return frame

    def presence(self, change: PresenceChange) -> dict[str, Any]:
        return {
            "type": "presence",
            "event": change.event,
            "person": self.who(change.email),
            "count": change.count,
        }

    def typing(self, key: str) -> dict[str, Any]:
        return {"type": "typing", "person": self.who(key)}


# Keys repeat in every message a person sends: decoded once. The frames
# built from the result are encoded and dropped, never changed.
_public = functools.lru_cache(maxsize=4096)(public_of)

V1 = Wire()
V2 = WireV2()
