"""Who people are: address and name rules, public ids and avatars. No I/O.

An address must be one its owner could be told apart from: besides the
shape rules of :func:`chatzilla.protocol.normalize_email`, it holds no
control, format (zero-width, joiners, bidi overrides and isolates),
private-use or unassigned character, no compatibility character (a
full-width or mathematical letter that stands for a plain one), and each of
its parts (the local part, each label of the domain) writes its letters in
one script, as UTS #39 "highly restrictive" allows (Latin may go with the
CJK scripts of one language). ``\\u0430lice@example.com`` (a Cyrillic a)
is refused; so is ``alice\\u200b@example.com``.

A display name is what others see instead of the address: NFC-normalised,
runs of white space made one space, 1 to :data:`MAX_NAME` characters, with
no control, format, bidi, unassigned or invisible character (any script,
mixed or not: two people may share a name, their ids and avatars tell them
apart), and not "Me" (how the page shows your own messages) in any case or
look-alike letters.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import re
import secrets
import unicodedata
from typing import Any

MAX_NAME = 40

GRAVATAR = "https://www.gravatar.com/avatar/"

# Categories refused anywhere in an address or a name: control, format
# (which holds the zero-width characters and the bidi controls),
# surrogate, private use, unassigned; and the line and paragraph separators.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# Scripts that may share one part of an address (UTS #39, highly
# restrictive): Latin with the CJK scripts of one language.
_ALLOWED_MIXES = (
    {"Latin", "Han", "Hiragana", "Katakana"},
    {"Latin", "Han", "Bopomofo"},
    {"Latin", "Han", "Hangul"},
)

# Unicode character names start with their script for every letter of the
# scripts people write addresses in; the ones that do not are mapped here.
_NAME_PREFIXES = {"CJK": "Han", "HANGUL": "Hangul", "HIRAGANA": "Hiragana", "KATAKANA": "Katakana"}

_SPACES = re.compile(r"\s+")


class IdentityError(ValueError):
    """An address or a name that cannot be used; ``reason`` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def script_of(char: str) -> str | None:
    """The script of a letter or digit-like character, or None for a
    character every script shares (digits, punctuation, combining marks)."""
    category = unicodedata.category(char)
    if not category.startswith("L"):
        return None
    name = unicodedata.name(char, "")
    word = name.split(" ", 1)[0]
    return _NAME_PREFIXES.get(word, word.title()) if word else None


# Characters that draw nothing though no rule above refuses them (letters
# or marks by category): the Hangul fillers, the blank Braille pattern, the
# combining grapheme joiner, the Khmer inherent vowels. A name of them is
# blank; one at the end of "Alice" makes another "Alice".
_INVISIBLE = "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5"

# What the page itself writes for a sender: "Me" for your own messages.
_RESERVED_NAMES = {"me"}
# Capital and small letters of other scripts that read as the ones of
# "Me" (Cyrillic capital Em and small Ie, Greek capital Mu and Epsilon):
# the Cyrillic "Me" must not pass for the page's "Me" either.
_LOOKS_LATIN = str.maketrans("\u041c\u043c\u0415\u0435\u039c\u0395\u03b5", "MmEeMEe")


def _refused_character(text: str) -> str | None:
    """A description of the first character of ``text`` nobody may use, or None."""
    for char in text:
        if char in _INVISIBLE:
            return f"an invisible character (U+{ord(char):04X} {unicodedata.name(char, '')})"
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            name = unicodedata.name(char, "")
            what = f"U+{ord(char):04X}" + (f" {name}" if name else "")
            if unicodedata.bidirectional(char) in _BIDI_CONTROLS or char in _BIDI_MARKS:
                return f"a bidi control character ({what}), which reorders how text reads"
            return f"an invisible or control character ({what})"
    return None


_BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
# The left-to-right, right-to-left and Arabic letter marks: invisible, and
# of a strong direction rather than a bidi control class.
_BIDI_MARKS = "\u200e\u200f\u061c"


def _unpunycode(label: str) -> str:
    """A domain label as people see it: an ``xn--`` label decoded (left as
    it is when it does not decode)."""
    if label.lower().startswith("xn--"):
        try:
            return codecs.decode(label[4:].encode("ascii"), "punycode")
        except (UnicodeError, ValueError):
            return label
    return label


def _mixed(part: str) -> set[str] | None:
    """The scripts of ``part`` when they may not go together, else None."""
    scripts = {s for s in map(script_of, part) if s is not None}
    if len(scripts) <= 1 or any(scripts <= allowed for allowed in _ALLOWED_MIXES):
        return None
    return scripts


def check_address(email: str) -> str:
    """Return ``email`` (already in :func:`chatzilla.protocol.normalize_email`'s
    shape) in NFC, or raise :class:`IdentityError` saying what makes it a
    possible look-alike of another address."""
    refused = _refused_character(email)
    if refused:
        raise IdentityError(f"the address holds {refused}")
    if email.startswith("{"):
        # A sender's key that starts with { is a signed-in person's
        # (Person.key, read back by public_of): an address under --auth open
        # must never pass for one, with someone's id, name and avatar.
        raise IdentityError("an address cannot start with {")
    email = unicodedata.normalize("NFC", email)
    if unicodedata.normalize("NFKC", email) != email:
        raise IdentityError(
            "the address holds a compatibility character (like a full-width or styled letter)"
        )
    local, _, domain = email.rpartition("@")
    parts = [
        ("before the @", local),
        *((f"in the domain label {label!r}", _unpunycode(label)) for label in domain.split(".")),
    ]
    for where, part in parts:
        scripts = _mixed(part)
        if scripts:
            raise IdentityError(
                f"the address mixes scripts {where} ({', '.join(sorted(scripts))}): it could pass for another"
            )
    return email


def check_name(raw: str) -> str:
    """Return the display name ``raw`` as kept (NFC, trimmed, white space runs
    made one space), or raise :class:`IdentityError`."""
    # White space of any kind (a tab, a new line) becomes a space first: a
    # name is one line.
    name = _SPACES.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    refused = _refused_character(name)
    if refused:
        raise IdentityError(f"a name cannot hold {refused}")
    if not name:
        raise IdentityError("a name is required")
    if len(name) > MAX_NAME:
        raise IdentityError(f"a name has at most {MAX_NAME} characters")
    if unicodedata.normalize("NFKC", name.translate(_LOOKS_LATIN)).casefold() in _RESERVED_NAMES:
        raise IdentityError(
            f"{name!r} is how the page shows each person their own messages: choose another name"
        )
    return name


def default_name(email: str) -> str:
    """The name a person starts with: their address's local part (cut to
    :data:`MAX_NAME`), made a valid name."""
    local = email.rpartition("@")[0]
    try:
        return check_name(local[:MAX_NAME])
    except IdentityError:
        return "someone"


def new_person_id() -> str:
    """A fresh public id: ``p`` and 12 random base-32 letters, never derived
    from the address."""
    return "p" + secrets.token_hex(8)[:12]


def avatar_url(email: str) -> str:
    """Gravatar's URL for ``email`` (SHA-256 of it trimmed and lower-cased),
    asking for a 404 when there is no picture so the page keeps its initials."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"{GRAVATAR}{digest}?s=80&d=404"


@dataclasses.dataclass(frozen=True)
class Person:
    """Someone signed in: ``id`` public and stable, ``email`` private (never
    sent to anyone but its owner), ``name`` theirs to change."""

    id: str
    email: str
    name: str

    def public(self) -> dict[str, Any]:
        """What others see of this person: ``{id, name, avatar}``."""
        return {"id": self.id, "name": self.name, "avatar": avatar_url(self.email)}

    def key(self) -> str:
        """The person as a participant key of the chat (see :func:`public_of`)."""
        return json.dumps(self.public(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def public_of(key: str) -> dict[str, Any]:
    """What a participant key stands for in a version 2 frame: the
    ``{id, name, avatar}`` of :meth:`Person.key`; a key that is no person
    (an address from a time the server ran with ``--auth open``) is shown as
    an unverified someone, never as the address."""
    if key.startswith("{"):
        try:
            value = json.loads(key)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {"id": "", "name": "unverified", "avatar": ""}
