"""Who may moderate whom, and what an action is. Plain rules, no I/O.

Roles, highest first: an *admin* (an address of the ``admins`` setting,
signed in) moderates every room; a room's *owner* (whoever first entered the
room while it had never had a message, or whom an admin makes owner) and its
*moderators* (whom its owner or an admin names) moderate that room. The lobby
has no owner: admins and the moderators they name look after it. Everyone
else is a member.

An actor acts only on someone of a lower role: a moderator mutes and bans
members, an owner moderators too, an admin owners too; nobody acts on an
admin (an operator removes one from the setting). Owners and admins name and
remove moderators; only admins name and remove owners.

A sanction is a mute (the person's messages are refused) or a ban (their
connections are closed and they cannot join), for a time or, without
``until``, until lifted. Every change is an :class:`Action`, kept in the
audit log with who did it, when and why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import secrets
from typing import Any

ADMIN = "admin"
OWNER = "owner"
MODERATOR = "moderator"
#: A room role kept per room (an admin's role comes from the settings).
ROOM_ROLES = (OWNER, MODERATOR)
RANK = {ADMIN: 3, OWNER: 2, MODERATOR: 1, None: 0}

MUTE = "mute"
BAN = "ban"
#: Action kinds, as frame types and in the audit log. "claim": a room's
#: first person became its owner; "delete": a moderator deleted someone
#: else's message (the message's change is the messages' own, see the hub);
#: "rules": the room's rules changed (owners and admins); "invite" and
#: "uninvite": someone may (no longer) join a private room; "report":
#: someone reported a message (``actor``) of someone (``target``) to the
#: room's moderators; "resolve": a moderator closed a report; "link" and
#: "unlink": an invitation link to a private room was made (or revoked).
KINDS = (
    "grant", "revoke", MUTE, "unmute", BAN, "unban", "claim", "delete", "rules", "invite", "uninvite",
    "report", "resolve", "link", "unlink",
)  # fmt: skip
#: Kinds kept and audited but told to nobody: an invitation link is for
#: the one who made it (its answer) to hand on.
QUIET = ("link", "unlink")
#: Longest topic, in characters.
MAX_TOPIC = 200
LIFTS = {"unmute": MUTE, "unban": BAN}

#: Longest mute or ban for a time, in minutes (a year); longer: until lifted.
MAX_MINUTES = 525_600
#: Longest reason, in characters.
MAX_REASON = 200
#: Who acts from the command line (``python -m chatzilla admin``).
OPERATOR = {"id": "", "name": "operator", "avatar": ""}
#: A person of whom nothing is known any more.
NOBODY = {"id": "", "name": "someone", "avatar": ""}


@dataclasses.dataclass(frozen=True)
class Rules:
    """A room's rules: a ``topic`` (may be empty); ``private``: only the
    invited (and the room's owner, moderators and admins) join it;
    ``read_only``: only they speak in it."""

    topic: str = ""
    private: bool = False
    read_only: bool = False

    def frame(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed(self, topic: str | None, private: bool | None, read_only: bool | None) -> Rules:
        """These rules with the fields given changed; raises ValueError for
        a topic over :data:`MAX_TOPIC` characters."""
        if topic is not None:
            topic = " ".join(topic.split())
            if len(topic) > MAX_TOPIC:
                raise ValueError(f"a topic has at most {MAX_TOPIC} characters, this one has {len(topic)}")
        return Rules(
            self.topic if topic is None else topic,
            self.private if private is None else private,
            self.read_only if read_only is None else read_only,
        )


def check_rules(actor: str | None) -> None:
    """Only a room's owner and admins change its rules."""
    if RANK[actor] < RANK[OWNER]:
        raise NotAllowed("only the room's owner and admins change its rules")


#: How long an invitation link lasts unless its maker says (hours: a week),
#: and at most (30 days); a room's unexpired links, at most.
LINK_HOURS = 168
MAX_LINK_HOURS = 720
MAX_LINKS = 20


def new_link() -> tuple[str, str]:
    """A new invitation link's secret (144 random bits, URL-safe) and its id."""
    secret = secrets.token_urlsafe(18)
    return secret, link_id(secret)


def link_id(secret: str) -> str:
    """The id a link's ``secret`` is kept under: a hash of it, so what is
    kept (and audited, and shown to moderators) never lets anyone in."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def link_until(hours: int | None, now: float) -> float:
    """When a link made at ``now`` for ``hours`` (None: :data:`LINK_HOURS`) expires."""
    if hours is None:
        hours = LINK_HOURS
    if not 1 <= hours <= MAX_LINK_HOURS:
        raise ValueError(f"hours must be a whole number from 1 to {MAX_LINK_HOURS}")
    return now + 3600 * hours


def check_invite(actor: str | None) -> None:
    """The room's moderators, owner and admins invite people."""
    if RANK[actor] < RANK[MODERATOR]:
        raise NotAllowed("only the room's moderators, its owner and admins invite people")


class NotAllowed(Exception):
    """The actor may not do this; ``reason`` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Most open reports one person has in a room at once: beyond them, a
#: report waits until moderators resolve one (a member cannot bury the
#: others' reports under theirs).
MAX_OPEN_REPORTS = 10


class TooManyReports(NotAllowed):
    """The reporter has :data:`MAX_OPEN_REPORTS` open in the room already."""

    def __init__(self) -> None:
        super().__init__(
            f"you have {MAX_OPEN_REPORTS} open reports in this room: the moderators look at those first"
        )


def role_of(person_id: str, room_roles: dict[str, str], admin_ids: set[str]) -> str | None:
    """The person's role in a room whose roles are ``room_roles`` (id -> role)."""
    if person_id and person_id in admin_ids:
        return ADMIN
    return room_roles.get(person_id)


def check_sanction(actor: str | None, target: str | None, kind: str) -> None:
    """May someone of role ``actor`` mute, ban or lift (``kind``) someone of
    role ``target``? Raises :class:`NotAllowed`."""
    if RANK[actor] < RANK[MODERATOR]:
        raise NotAllowed("only the room's moderators, its owner and admins may do that")
    if RANK[actor] <= RANK[target]:
        raise NotAllowed(f"a {actor} cannot {kind} a {target}")


def check_role_change(actor: str | None, target: str | None, role: str) -> None:
    """May someone of role ``actor`` give ``role`` to (or take it from)
    someone whose role is ``target``? Raises :class:`NotAllowed`."""
    if role not in ROOM_ROLES:
        raise NotAllowed(f"a room's roles are {' and '.join(ROOM_ROLES)}")
    if role == OWNER and actor != ADMIN:
        raise NotAllowed("only an admin names or removes a room's owner")
    if role == MODERATOR and RANK[actor] < RANK[OWNER]:
        raise NotAllowed("only the room's owner and admins name or remove moderators")
    if target == ADMIN:
        raise NotAllowed("an admin's role comes from the server's settings")


def check_reason(raw: str | None) -> str:
    """The reason, trimmed; at most :data:`MAX_REASON` characters, one line."""
    reason = " ".join((raw or "").split())
    if len(reason) > MAX_REASON:
        raise ValueError(f"a reason has at most {MAX_REASON} characters, this one has {len(reason)}")
    return reason


def until_of(minutes: int | None, now: float) -> float | None:
    """When a sanction of ``minutes`` given at ``now`` ends (None: until lifted)."""
    if minutes is None:
        return None
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be a whole number from 1 to {MAX_MINUTES} (none: until lifted)")
    return now + 60 * minutes


def time_left(until: float, now: float) -> str:
    """``until - now`` for people: "2 h 5 min", "4 min 10 s", "12 s"."""
    seconds = max(1, math.ceil(until - now))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclasses.dataclass(frozen=True)
class Sanction:
    """A mute or ban of person ``person`` (an id) in ``room``, until
    ``until`` (None: until lifted), given by ``actor`` (an id; "" from the
    command line) at ``ts`` for ``reason``."""

    room: str
    person: str
    kind: str
    until: float | None
    reason: str
    actor: str
    ts: float

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def explain(self, now: float) -> str:
        """Why the person is refused, for them: how long, and the reason."""
        verb = "muted in" if self.kind == MUTE else "banned from"
        how_long = "until lifted" if self.until is None else f"for another {time_left(self.until, now)}"
        return f"you are {verb} this room {how_long}" + (f": {self.reason}" if self.reason else "")


@dataclasses.dataclass(frozen=True)
class Action:
    """One moderation change, as stored, audited and told to every process.

    ``kind`` is one of :data:`KINDS`; ``target`` and ``actor`` are ids
    (``actor`` "" for the operator), ``target_public`` and ``actor_public``
    the ``{id, name, avatar}`` the room's frames show; ``role`` goes with
    grant, revoke and claim, ``until`` (None: until lifted) with mute and
    ban, ``message`` (an id) with delete."""

    kind: str
    room: str
    target: str
    actor: str
    ts: float
    reason: str = ""
    until: float | None = None
    role: str | None = None
    target_public: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(NOBODY))
    actor_public: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(OPERATOR))
    message: int | None = None
    #: With "rules": the room's rules after the change (:class:`Rules` as a dict).
    rules: dict[str, Any] | None = None
    #: With "report" and "resolve": the report's number (set by the store).
    report: int | None = None
    #: With "link" and "unlink" (``until``: when the link expires), and an
    #: "invite" made by following one: the link's id (:func:`link_id`).
    link: str | None = None

    def sanction(self) -> Sanction:
        """The sanction a mute or ban puts in place."""
        return Sanction(self.room, self.target, self.kind, self.until, self.reason, self.actor, self.ts)

    def frame(self) -> dict[str, Any]:
        """The ``moderated`` frame the room's people receive."""
        frame: dict[str, Any] = {
            "type": "moderated",
            "action": self.kind,
            "person": self.target_public,
            "by": self.actor_public,
            "ts": self.ts,
        }
        if self.role is not None:
            frame["role"] = self.role
        if self.kind in (MUTE, BAN):
            frame["until"] = self.until
        if self.message is not None:
            frame["message"] = self.message
        if self.rules is not None:
            frame["rules"] = self.rules
        if self.report is not None:
            frame["report"] = self.report
        if self.link is not None:
            frame["link"] = self.link
        if self.reason:
            frame["reason"] = self.reason
        return frame

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Action:
        """Raises ValueError (or TypeError, KeyError) for text that is no action."""
        value = json.loads(text)
        if not isinstance(value, dict) or value.get("kind") not in KINDS:
            raise ValueError("not a moderation action")
        return cls(**value)


def redacted(text: str, person: str) -> str | None:
    """An action's JSON (``text``) no longer naming ``person`` as its target
    or actor (a deletion request), or None when it did not name them."""
    action = json.loads(text)
    changed = False
    for who, public in (("target", "target_public"), ("actor", "actor_public")):
        if action.get(who) == person:
            action[who] = ""
            action[public] = dict(NOBODY)
            changed = True
    return json.dumps(action) if changed else None


def ban_close_reason(sanction: Sanction) -> str:
    """The close frame's reason for a banned person's connections: short
    (a close frame is no place for a long reason), with the time when it ends."""
    how_long = "until lifted" if sanction.until is None else f"for {time_left(sanction.until, sanction.ts)}"
    text = f"Banned from this room {how_long}"
    if sanction.reason:
        text += f": {sanction.reason}"
    return text[:240]
