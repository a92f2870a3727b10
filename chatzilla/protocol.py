"""Wire protocols 1 and 2: parse client frames, build server frames.

Pure functions, no I/O. :func:`parse_frame` turns one application frame (the
text of one SockJS message) into a command object or raises
:class:`ProtocolError`, whose ``code`` is one of the version 1 error codes.
The frames themselves are documented in ``docs/protocol.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import unicodedata
from typing import Any

from . import identity

MAX_REF = 64
MAX_EMAIL = 254
DEFAULT_ROOM = "lobby"
#: Most messages one scrollback request returns; larger asks are trimmed to it.
MAX_PAGE = 100
#: The largest integer a frame's field may hold: the largest id any backend
#: can keep (SQLite's integers are signed 64-bit). A larger one would fail in
#: the backend (OverflowError, a Redis error) instead of being refused here.
MAX_INTEGER = 2**63 - 1
#: Results a search answers at once (and by default); the longest query.
MAX_RESULTS = 50
DEFAULT_RESULTS = 20
MAX_QUERY = 200
MAX_QUERY_WORDS = 10
#: Most rooms one ``rooms`` frame asks about.
MAX_ROOMS_ASKED = 20
#: Different reactions one message may have; the longest reaction, in characters.
MAX_REACTIONS = 20
MAX_EMOJI = 16
#: Most bytes a message's frame may reach on the wire with its reactions
#: (:func:`wire_size`): every reaction sends the whole message to the whole
#: room, and history sends at least one message however large, so people
#: piling on (under ``--auth open``, one client under many addresses) must
#: not make it megabytes. Some 2000 reactions of plain addresses, 370 of
#: version 2 persons.
MAX_MESSAGE_BYTES = 64 * 1024

#: The longest person id a frame may name (ids are 13 characters).
MAX_PERSON_ID = 64

_ROOM = re.compile(r"[a-z0-9_-]{1,64}")

# What "trimmed" takes off: Unicode white space. Python's str.strip() would
# also take the separators U+001C..U+001F, which are control characters and
# must be refused in an address, not silently dropped.
_BLANK = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f")

# Control characters (C0, DEL, C1) and every Unicode white space; none may
# appear in an e-mail address.
_FORBIDDEN_IN_EMAIL = re.compile(r"[\x00-\x20\x7f-\x9f\s]")


class ProtocolError(Exception):
    """A frame the server refuses; becomes an ``error`` frame.

    ``code`` is an error code of docs/protocol.md, ``reason`` is for humans,
    ``ref`` is echoed back when the offending frame carried a valid one, and
    ``retry_after`` (seconds) goes with ``rate_limited``.
    """

    def __init__(self, code: str, reason: str, ref: str | None = None, retry_after: float | None = None):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.ref = ref
        self.retry_after = retry_after


def rate_limited(wait: float, what: str, ref: str | None = None) -> ProtocolError:
    """``rate_limited``: ``what`` came too fast; try again in ``wait`` seconds."""
    # Whole milliseconds, rounded up: retrying after exactly that succeeds.
    wait = math.ceil(wait * 1000) / 1000
    return ProtocolError(
        "rate_limited", f"too many {what}: wait {wait:g} s and try again", ref, retry_after=wait
    )


@dataclasses.dataclass(frozen=True)
class Join:
    """A ``join``: ``room`` as sent (checked by :func:`check_room`; None when
    the frame named none), ``since`` the last message id the client already
    has, if any."""

    email: str | None
    room: str | None = None
    since: int | None = None
    ref: str | None = None
    #: A bot's token (protocol 2), instead of a signed-in browser's cookie.
    token: str | None = None
    #: The last change id the client knows (it follows changes): ``joined``
    #: says the room's, and with ``since`` lists the changes after ``rev``.
    rev: int | None = None
    #: An invitation link's secret (protocol 2): lets its follower into the
    #: private room it is for (checked only when they are not invited yet).
    invite: str | None = None


@dataclasses.dataclass(frozen=True)
class Say:
    """A ``message`` frame from a client: ``content`` still untrimmed;
    ``reply_to`` the id of the message of the room it replies to, if any."""

    content: str
    ref: str | None
    reply_to: int | None = None


@dataclasses.dataclass(frozen=True)
class Scrollback:
    """A ``history`` request: up to ``limit`` messages older than ``before``
    (the newest ones when ``before`` is None)."""

    before: int | None
    limit: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Change:
    """An ``edit`` (``content`` still untrimmed) or a ``delete`` (``content``
    None) of the sender's own message ``id``."""

    id: int
    content: str | None
    ref: str | None = None
    #: Why, for a moderator's delete of someone else's message (the audit log's).
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Search:
    """A ``search`` of the room's messages for ``q`` (unchecked), newest
    first, older than ``before`` (None: from the newest)."""

    q: str
    before: int | None
    limit: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Reaction:
    """A ``react`` (or, ``remove``, ``unreact``): the sender's ``emoji``
    (unchecked) on message ``id``."""

    id: int
    emoji: str
    remove: bool
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Changes:
    """A ``changes`` request: the messages changed after change id ``after``."""

    after: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Rooms:
    """A ``rooms`` request: for each ``(room, id)`` of ``seen``, how many
    messages the room has after that id; and the active public rooms."""

    seen: tuple[tuple[str, int], ...] = ()
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Typing:
    """A ``typing`` frame: the sender is typing a message (no reply)."""

    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Participants:
    """A ``participants`` request (protocol 2): a page of the people present,
    by public id, those after the id ``after`` (None: from the first)."""

    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Leave:
    """A ``leave`` frame: leave the room now (no reply; the connection stays)."""

    ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Moderate:
    """A moderation frame (protocol 2): ``kind`` is ``grant``, ``revoke``,
    ``mute``, ``unmute``, ``ban`` or ``unban``, on the person whose public
    id is ``person``; ``role`` goes with grant and revoke, ``minutes`` (None:
    until lifted) with mute and ban. The rules are :mod:`chatzilla.moderation`'s."""

    kind: str
    person: str
    role: str | None = None
    minutes: int | None = None
    reason: str | None = None
    ref: str | None = None
    #: With ``report``: the message's id; with ``resolve``: the report's number.
    message: int | None = None
    report: int | None = None
    #: With ``rules`` (no ``person``): the fields to change.
    topic: str | None = None
    private: bool | None = None
    read_only: bool | None = None
    #: With ``invite`` and ``uninvite``: an address instead of ``person``.
    email: str | None = None
    #: With ``invite_link``: how long it lasts; with ``revoke_link``: its id.
    hours: int | None = None
    link: str | None = None


#: The frame types of :class:`Moderate`.
MODERATE = (
    "grant", "revoke", "mute", "unmute", "ban", "unban", "rules", "invite", "uninvite", "report", "reports",
    "resolve", "invite_link", "invite_links", "revoke_link",
)  # fmt: skip

Command = (
    Join
    | Say
    | Scrollback
    | Typing
    | Leave
    | Change
    | Changes
    | Reaction
    | Search
    | Moderate
    | Rooms
    | Participants
)


def normalize_email(raw: str) -> str:
    """Return the canonical form of an address, or raise ``invalid_email``.

    Trimmed; at most 254 characters; exactly one ``@``; a non-empty local
    part; a domain with a dot that neither starts nor ends the domain; no
    white space or control characters; nothing that makes it a look-alike of
    another address (:func:`chatzilla.identity.check_address`: format and
    bidi characters, mixed scripts). The domain is lower-cased (it is
    compared case-insensitively), the local part is kept as typed; the
    whole is in NFC.
    """
    email = raw.strip(_BLANK)
    if not email:
        raise ProtocolError("invalid_email", "an e-mail address is required")
    if "@" in email:
        # Lower-casing can lengthen text ("\u0130" becomes two characters),
        # so the length rule applies to the address as it will be kept.
        local, _, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
    if len(email) > MAX_EMAIL:
        raise ProtocolError("invalid_email", f"an e-mail address has at most {MAX_EMAIL} characters")
    if _FORBIDDEN_IN_EMAIL.search(email):
        raise ProtocolError("invalid_email", "an e-mail address has no spaces or control characters")
    if email.count("@") != 1:
        raise ProtocolError("invalid_email", "an e-mail address has exactly one @")
    local, domain = email.split("@")
    if not local:
        raise ProtocolError("invalid_email", "nothing before the @")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise ProtocolError("invalid_email", "the domain needs a dot, like example.com")
    try:
        return identity.check_address(email)
    except identity.IdentityError as error:
        raise ProtocolError("invalid_email", error.reason) from None


def check_room(raw: str, ref: str | None = None) -> str:
    """Return the room name, or raise ``invalid_room``: 1 to 64 of a-z 0-9 - _."""
    if not _ROOM.fullmatch(raw):
        raise ProtocolError("invalid_room", "a room name is 1 to 64 characters of a-z, 0-9, - and _", ref)
    return raw


def clean_content(raw: str, limit: int) -> str:
    """Trim message text; raise ``empty`` or ``too_long`` (over ``limit`` characters)."""
    content = raw.strip(_BLANK)
    if not content:
        raise ProtocolError("empty", "the message is empty")
    if len(content) > limit:
        raise ProtocolError(
            "too_long", f"a message has at most {limit} characters, this one has {len(content)}"
        )
    return content


# What an emoji may hold: symbols (So, Sk: skin tones), marks (Mn: the
# variation selector U+FE0F; Me: the keycap U+20E3), the zero-width joiner
# and tag characters (Cf, flags of regions), and the digits, # and * that
# start a keycap. Letters, white space, controls and unassigned characters
# are no emoji.
_EMOJI_PARTS = frozenset(("So", "Sk", "Mn", "Me"))
_EMOJI_FORMAT = frozenset(chr(c) for c in (0x200D, *range(0xE0020, 0xE0080)))


def check_emoji(raw: str, ref: str | None = None) -> str:
    """A reaction: one emoji (a sequence such as a flag, a family or a
    keycap counts as one), at most :data:`MAX_EMOJI` characters. Raises
    ``invalid_emoji``."""
    emoji = raw.strip(_BLANK)
    ok = 0 < len(emoji) <= MAX_EMOJI and any(unicodedata.category(c) in ("So", "Sk", "Me") for c in emoji)
    for c in emoji:
        category = unicodedata.category(c)
        if not (category in _EMOJI_PARTS or c in _EMOJI_FORMAT or c in "0123456789#*"):
            ok = False
    if not ok:
        raise ProtocolError("invalid_emoji", "a reaction is one emoji", ref)
    return emoji


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The words of ``text`` as search compares them: runs of letters,
    digits and ``_``, case-folded."""
    return [word.casefold() for word in _WORD.findall(text)]


def search_words(raw: str, ref: str | None = None) -> list[str]:
    """The words a search looks for (every one must be in a message; the
    last may be the start of a word, as it is being typed). Raises
    ``invalid_query`` for none, or a query over :data:`MAX_QUERY`
    characters or :data:`MAX_QUERY_WORDS` words."""
    if len(raw) > MAX_QUERY:
        raise ProtocolError("invalid_query", f"a search has at most {MAX_QUERY} characters", ref)
    found = words(raw)
    if not found:
        raise ProtocolError("invalid_query", "a search needs at least one word (letters or digits)", ref)
    if len(found) > MAX_QUERY_WORDS:
        raise ProtocolError("invalid_query", f"a search has at most {MAX_QUERY_WORDS} words", ref)
    return found


def matches(wanted: list[str], text: str) -> bool:
    """Whether ``text`` holds every word of ``wanted`` (from
    :func:`search_words`), the last one as the start of a word: the rule
    of the full-text indexes, for a backend that has none."""
    have = words(text)
    *whole, start = wanted
    return all(word in have for word in whole) and any(word.startswith(start) for word in have)


def _field(frame: dict[str, Any], name: str, ref: str | None) -> str | None:
    """An optional string field: None when absent (or null)."""
    value = frame.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError("bad_frame", f"field '{name}' must be a string", ref)
    if not _is_unicode(value):
        raise ProtocolError("bad_frame", f"field '{name}' is not valid Unicode", ref)
    return value


def _required(frame: dict[str, Any], name: str, ref: str | None) -> str:
    """A string field the frame must have."""
    value = _field(frame, name, ref)
    if value is None:
        raise ProtocolError("bad_frame", f"field '{name}' is required and must be a string", ref)
    return value


def _boolean(frame: dict[str, Any], name: str, ref: str | None) -> bool | None:
    """An optional true or false: None when absent (or null)."""
    value = frame.get(name)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError("bad_frame", f"field '{name}' must be true or false", ref)
    return value


def _integer(frame: dict[str, Any], name: str, minimum: int, ref: str | None) -> int | None:
    value = frame.get(name)
    if value is None:
        return None
    # JSON true/false arrive as bool, a subclass of int: refuse them too.
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_INTEGER:
        raise ProtocolError(
            "bad_frame", f"field '{name}' must be an integer from {minimum} to {MAX_INTEGER}", ref
        )
    return value


def _seen(frame: dict[str, Any], ref: str | None) -> tuple[tuple[str, int], ...]:
    """A ``rooms`` frame's ``seen``: an object of at most
    :data:`MAX_ROOMS_ASKED` room names, each with a message id (0 or more)."""
    seen = frame.get("seen")
    if seen is None:
        return ()
    if not isinstance(seen, dict) or len(seen) > MAX_ROOMS_ASKED:
        raise ProtocolError(
            "bad_frame", f"'seen' must be an object of at most {MAX_ROOMS_ASKED} rooms, each with an id", ref
        )
    return tuple((check_room(room, ref), _integer(seen, room, 0, ref) or 0) for room in seen)


def _is_unicode(text: str) -> bool:
    # JSON lets "\ud800" through as a lone surrogate, which cannot be stored
    # or sent as UTF-8: refuse it at the door.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_frame(text: str, version: int = 1) -> Command:
    """Parse one client frame; raise :class:`ProtocolError` for anything bad.

    Only the shape is checked here (JSON object, string ``type``, field
    types, ``ref`` length); e-mail and content rules are the chat's, applied
    where the command is carried out. Every command keeps the frame's ``ref``
    so any error it causes can echo it. ``version`` 1 requires a ``join``'s
    ``email``; version 2 (``--auth link``) ignores it and reads ``token``.
    """
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_frame", "a frame must be a JSON object") from None
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "a frame must be a JSON object")
    ref = frame.get("ref")
    if ref is not None and not (isinstance(ref, str) and len(ref) <= MAX_REF and _is_unicode(ref)):
        raise ProtocolError("bad_frame", f"'ref' must be a string of at most {MAX_REF} characters")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", "a frame needs a string field 'type'", ref)
    if kind == "join":
        return Join(
            # Protocol 2 needs none: who joins is whoever signed in.
            email=_required(frame, "email", ref) if version == 1 else None,
            room=_field(frame, "room", ref),
            since=_integer(frame, "since", 0, ref),
            ref=ref,
            token=_field(frame, "token", ref) if version == 2 else None,
            rev=_integer(frame, "rev", 0, ref),
            invite=_field(frame, "invite", ref) if version == 2 else None,
        )
    if kind == "message":
        return Say(
            content=_required(frame, "content", ref), ref=ref, reply_to=_integer(frame, "reply_to", 1, ref)
        )
    if kind == "history":
        limit = _integer(frame, "limit", 1, ref)
        return Scrollback(
            before=_integer(frame, "before", 1, ref),
            limit=MAX_PAGE if limit is None else min(limit, MAX_PAGE),
            ref=ref,
        )
    if kind == "search":
        limit = _integer(frame, "limit", 1, ref)
        return Search(
            q=_required(frame, "q", ref),
            before=_integer(frame, "before", 1, ref),
            limit=DEFAULT_RESULTS if limit is None else min(limit, MAX_RESULTS),
            ref=ref,
        )
    if kind in ("edit", "delete", "react", "unreact"):
        message_id = _integer(frame, "id", 1, ref)
        if message_id is None:
            raise ProtocolError("bad_frame", f"'{kind}' needs the integer field 'id'", ref)
        if kind in ("react", "unreact"):
            return Reaction(message_id, _required(frame, "emoji", ref), kind == "unreact", ref)
        content = _required(frame, "content", ref) if kind == "edit" else None
        reason = _field(frame, "reason", ref) if kind == "delete" else None
        return Change(id=message_id, content=content, ref=ref, reason=reason)
    if kind == "changes":
        after = _integer(frame, "after", 0, ref)
        return Changes(after=0 if after is None else after, ref=ref)
    if kind == "typing":
        return Typing(ref=ref)
    if kind == "rooms":
        return Rooms(seen=_seen(frame, ref), ref=ref)
    if kind == "leave":
        return Leave(ref=ref)
    if kind == "participants" and version == 2:
        last = _field(frame, "after", ref)
        if last is not None and len(last) > MAX_PERSON_ID:
            raise ProtocolError(
                "bad_frame", f"'after' must be a person's id (at most {MAX_PERSON_ID} characters)", ref
            )
        return Participants(after=last, ref=ref)
    if kind in ("report", "reports", "resolve") and version == 2:
        number = {"report": "id", "resolve": "report"}.get(kind)
        value = _integer(frame, number, 1, ref) if number else None
        if number and value is None:
            raise ProtocolError("bad_frame", f"'{kind}' needs the integer field '{number}'", ref)
        return Moderate(
            kind=kind,
            person="",
            message=value if kind == "report" else None,
            report=value if kind == "resolve" else None,
            reason=_field(frame, "reason", ref),
            ref=ref,
        )
    if kind == "rules" and version == 2:
        return Moderate(
            kind=kind,
            person="",
            topic=_field(frame, "topic", ref),
            private=_boolean(frame, "private", ref),
            read_only=_boolean(frame, "read_only", ref),
            ref=ref,
        )
    if kind in ("invite_link", "invite_links", "revoke_link") and version == 2:
        return Moderate(
            kind=kind,
            person="",
            hours=_integer(frame, "hours", 1, ref) if kind == "invite_link" else None,
            link=_required(frame, "id", ref) if kind == "revoke_link" else None,
            ref=ref,
        )
    if kind in ("invite", "uninvite") and version == 2 and "person" not in frame:
        return Moderate(kind=kind, person="", email=_required(frame, "email", ref), ref=ref)
    if kind in MODERATE and version == 2:
        return Moderate(
            kind=kind,
            person=_required(frame, "person", ref),
            role=_field(frame, "role", ref),
            minutes=_integer(frame, "minutes", 1, ref),
            reason=_field(frame, "reason", ref),
            ref=ref,
        )
    raise ProtocolError("bad_frame", f"unknown frame type {kind[:40]!r}", ref)


#: How much of a frame's head and tail :func:`peek` reads.
PEEK = 256
_PEEK_TYPE = re.compile(r'[{,]\s*"type"\s*:\s*"([a-z_]{1,20})"')
_PEEK_REF = re.compile(r'[{,]\s*"ref"\s*:\s*"([^"\\\x00-\x1f]{0,' + str(MAX_REF) + '})"')


def peek(text: str) -> tuple[str | None, str | None]:
    """The ``type`` and ``ref`` of a frame, as far as its first and last
    :data:`PEEK` characters show them, without parsing it: for a frame
    refused unread (too fast), whose ``ref`` is still echoed. A plain
    ``"ref"`` that clients put first or last (as the page does) is found;
    an escaped one, or one in the middle of a large frame, is not (None)."""
    windows = (text,) if len(text) <= 2 * PEEK else (text[:PEEK], text[-PEEK:])
    found = []
    for pattern in (_PEEK_TYPE, _PEEK_REF):
        match = None
        for window in windows:
            match = pattern.search(window)
            if match:
                break
        found.append(match.group(1) if match and _is_unicode(match.group(1)) else None)
    return found[0], found[1]


def utf8_size(text: str) -> int:
    """Bytes ``text`` takes as UTF-8 (a lone surrogate counted as 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def wire_size(text: str) -> int:
    """Bytes the frame ``text`` takes inside a SockJS packet, where it is a
    JSON string with every non-ASCII character escaped: 6 bytes for one of
    the Basic Multilingual Plane, 12 for an emoji (a surrogate pair), 2 for
    a quote. At least its UTF-8 size, so it bounds every transport's bytes."""
    return len(json.dumps(text))


def encode(frame: dict[str, Any]) -> str:
    """Serialize a server frame: compact JSON, UTF-8 kept as text."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(error: ProtocolError) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": error.code, "reason": error.reason}
    if error.ref is not None:
        frame["ref"] = error.ref
    if error.retry_after is not None:
        frame["retry_after"] = error.retry_after
    return frame
