"""The chat's domain: messages and who is present. No I/O.

A :class:`Roster` tracks which connections each e-mail has in a room. One
person in two tabs is one participant: presence changes only when an e-mail
gains its first connection or loses its last. A person who loses their last
connection may *linger*: still a participant, with no connection, until they
come back (no change at all) or :meth:`Roster.expire` says they left.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

#: A roster's connection key: whatever the caller counts (the hub's clients).
Conn = TypeVar("Conn", bound=Hashable)


@dataclasses.dataclass(frozen=True)
class Message:
    """A stored chat message. ``id`` is strictly increasing within its room.

    A message changed after it was sent (edited, deleted) carries ``rev``,
    the room's change id of its latest change (0: never changed), which
    only grows within the room, over every message: a client that knows
    the room's changes up to some ``rev`` asks for the later ones (see
    :meth:`~chatzilla.backends.base.Backend.changes`). ``edited`` is when
    it was last edited; a deleted message keeps its id, sender and time,
    with empty ``content``.
    """

    id: int
    sender: str
    content: str
    ts: float
    ref: str | None = None
    rev: int = 0
    edited: float | None = None
    deleted: bool = False
    #: (emoji, the keys of who reacted with it, in order), in the order of
    #: each emoji's first reaction; an emoji nobody reacts with is not kept.
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: The id of the message of the room this one replies to (0: none). Only
    #: the id is stored: what the reply shows of it is read with it.
    reply_to: int = 0
    #: What the reply shows of that message (:func:`quote_of`), where it was
    #: read with it: the frames say ``reply`` then. Not stored, nor compared.
    quote: Quote | None = dataclasses.field(default=None, compare=False)

    def frame(self, kind: str = "message") -> dict[str, Any]:
        """The ``message`` frame every other participant receives (no
        ``ref``); ``kind`` "changed" for the live news of a change. The
        fields of a change (``rev``, ``edited``, ``deleted``) are there only
        on a changed message, so an unchanged one is version 1's frame."""
        frame: dict[str, Any] = {
            "type": kind,
            "id": self.id,
            "sender": self.sender,
            "content": self.content,
            "ts": self.ts,
        }
        if self.rev:
            frame["rev"] = self.rev
        if self.edited is not None:
            frame["edited"] = self.edited
        if self.deleted:
            frame["deleted"] = True
        if self.reactions:
            frame["reactions"] = [
                {"emoji": emoji, "count": len(people), "people": list(people)}
                for emoji, people in self.reactions
            ]
        if self.reply_to:
            frame["reply_to"] = self.reply_to
            if self.quote is not None:
                frame["reply"] = self.quote.frame()
        return frame

    def ack(self) -> dict[str, Any]:
        """The ``sent`` acknowledgement for the sending connection."""
        frame: dict[str, Any] = {"type": "sent", "id": self.id, "ts": self.ts}
        if self.ref is not None:
            frame["ref"] = self.ref
        return frame


#: Characters of the original a reply shows at most (and "…" when cut): on
#: the wire at most some 1.2 KB (an emoji is 12 bytes in JSON), whatever the
#: original holds.
EXCERPT = 100


@dataclasses.dataclass(frozen=True)
class Quote:
    """What a reply shows of the message it answers: its sender and the
    start of its text, as that message is when the reply's frame is made
    (an edit shows, a delete leaves no text)."""

    sender: str
    excerpt: str
    deleted: bool = False

    def frame(self) -> dict[str, Any]:
        """The ``reply`` of a message frame (protocol 1: sender by address)."""
        frame: dict[str, Any] = {"sender": self.sender, "excerpt": self.excerpt}
        if self.deleted:
            frame["deleted"] = True
        return frame


def quote_of(original: Message) -> Quote:
    """What a reply to ``original`` shows of it: its first :data:`EXCERPT`
    characters, white space runs (line breaks too) as one space, "…" when
    cut; no text when it is deleted."""
    if original.deleted:
        return Quote(original.sender, "", True)
    text = " ".join(original.content.split())
    if len(text) > EXCERPT:
        text = text[: EXCERPT - 1].rstrip() + "…"
    return Quote(original.sender, text)


def originals_missing(messages: Iterable[Message]) -> list[int]:
    """The ids of the messages the replies among ``messages`` answer that
    are not among ``messages`` themselves, ascending (to be read)."""
    batch = list(messages)
    held = {m.id for m in batch}
    return sorted({m.reply_to for m in batch if m.reply_to and m.reply_to not in held})


def with_quotes(messages: list[Message], read: Iterable[Message]) -> list[Message]:
    """``messages`` with what each reply among them quotes of the message it
    answers (:func:`quote_of`), found among ``messages`` or ``read`` (see
    :func:`originals_missing`); no quote when neither holds it (retention
    removed it)."""
    if not any(m.reply_to for m in messages):
        return messages
    originals = {m.id: m for m in messages}
    originals.update((m.id, m) for m in read)
    return [
        dataclasses.replace(m, quote=quote_of(originals[m.reply_to]) if m.reply_to in originals else None)
        if m.reply_to
        else m
        for m in messages
    ]


#: What a change does to a message: "edit" (new ``content``), "delete",
#: "react" or "unreact" (``who`` adds or takes back ``emoji``).
EDIT = "edit"
DELETE = "delete"
REACT = "react"
UNREACT = "unreact"


@dataclasses.dataclass(frozen=True)
class Change:
    """One change to a stored message (see :func:`changed`)."""

    kind: str
    content: str = ""
    emoji: str = ""
    who: str = ""


def changed(message: Message, change: Change, rev: int, now: float) -> Message | None:
    """``message`` after ``change`` as change ``rev`` at time ``now``; None
    when it changes nothing (deleting a deleted message, editing a message
    to the text it has, a reaction that is there already or not there): the
    backends store nothing then, which makes a retried change harmless.
    Raises :class:`ValueError` for an edit of, or a reaction to, a deleted
    message (the caller refuses it)."""
    if message.deleted:
        if change.kind == DELETE:
            return None
        raise ValueError("a deleted message cannot change")
    if change.kind == DELETE:
        return dataclasses.replace(message, content="", deleted=True, reactions=(), rev=rev)
    if change.kind == EDIT:
        if change.content == message.content:
            return None
        return dataclasses.replace(message, content=change.content, edited=now, rev=rev)
    reactions = {emoji: list(people) for emoji, people in message.reactions}
    people = reactions.setdefault(change.emoji, [])
    if (change.who in people) == (change.kind == REACT):
        return None
    if change.kind == REACT:
        people.append(change.who)
    else:
        people.remove(change.who)
    kept = tuple((emoji, tuple(people)) for emoji, people in reactions.items() if people)
    return dataclasses.replace(message, reactions=kept, rev=rev)


def quote_text(quote: Quote | None) -> str:
    """A quote as it goes from one process to another with its reply: JSON ("" for none)."""
    if quote is None:
        return ""
    return json.dumps([quote.sender, quote.excerpt, quote.deleted], ensure_ascii=False)


def parse_quote(text: str | None) -> Quote | None:
    """What :func:`quote_text` wrote."""
    if not text:
        return None
    sender, excerpt, deleted = json.loads(text)
    return Quote(str(sender), str(excerpt), bool(deleted))


def reactions_text(message: Message) -> str:
    """``message.reactions`` as storage keeps them: JSON ("" for none)."""
    if not message.reactions:
        return ""
    return json.dumps([[emoji, list(people)] for emoji, people in message.reactions], ensure_ascii=False)


def parse_reactions(text: str | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What :func:`reactions_text` wrote."""
    if not text:
        return ()
    return tuple((emoji, tuple(people)) for emoji, people in json.loads(text))


@dataclasses.dataclass(frozen=True)
class PresenceChange:
    """What a join or leave did: ``event`` is "join" or "leave", or None when
    the e-mail's other connections keep it present (no frame to send)."""

    event: str | None
    email: str
    count: int
    #: Orders the presence changes of a room, as the backend numbers them
    #: (see :meth:`~chatzilla.backends.base.Backend.enter`); 0: not numbered.
    version: int = 0

    def frame(self) -> dict[str, Any]:
        return {"type": "presence", "event": self.event, "email": self.email, "count": self.count}


class Roster(Generic[Conn]):
    """Who is in one room: e-mail -> the set of that person's connections
    (empty for a person who lingers).

    Connections are opaque hashable keys. :meth:`remove` is idempotent, so a
    connection can be removed however (and however often) it ended.
    """

    def __init__(self) -> None:
        self._by_email: dict[str, set[Conn]] = {}
        self._email_of: dict[Conn, str] = {}

    def add(self, conn: Conn, email: str) -> PresenceChange:
        """Count ``conn`` for ``email``: a "join" unless the e-mail was a
        participant already (another connection, or lingering)."""
        if conn in self._email_of:
            raise ValueError("connection is already in the roster")
        conns = self._by_email.get(email)
        first = conns is None
        if conns is None:
            conns = self._by_email[email] = set()
        conns.add(conn)
        self._email_of[conn] = email
        return PresenceChange("join" if first else None, email, len(self._by_email))

    def remove(self, conn: Conn, linger: bool = False) -> PresenceChange | None:
        """Forget ``conn``; None if it was not there. The e-mail's last
        connection gone, it leaves ("leave"), or with ``linger`` stays a
        participant with no connection (no event)."""
        email = self._email_of.pop(conn, None)
        if email is None:
            return None
        conns = self._by_email[email]
        conns.discard(conn)
        last = not conns and not linger
        if last:
            del self._by_email[email]
        return PresenceChange("leave" if last else None, email, len(self._by_email))

    def linger(self, email: str) -> None:
        """Count ``email`` as a participant with no connection (if it is none
        yet): someone expected back, as after a restart."""
        self._by_email.setdefault(email, set())

    def lingering(self, email: str) -> bool:
        """Whether ``email`` is a participant with no connection."""
        conns = self._by_email.get(email)
        return conns is not None and not conns

    def expire(self, email: str) -> PresenceChange | None:
        """A lingering ``email`` leaves now ("leave"); None if it is not
        lingering (it came back, or left already)."""
        if not self.lingering(email):
            return None
        del self._by_email[email]
        return PresenceChange("leave", email, len(self._by_email))

    def participants(self) -> list[str]:
        """E-mails present, each once, in the order they arrived."""
        return list(self._by_email)

    def connections(self) -> list[Conn]:
        return list(self._email_of)

    def email_of(self, conn: Conn) -> str | None:
        return self._email_of.get(conn)

    def __len__(self) -> int:
        return len(self._by_email)
