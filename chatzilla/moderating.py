"""Moderation at work: checks a join, a message and a typing frame against
the room's sanctions, carries out the moderation frames, and applies every
change (this process's and, through the store, every other process's) to
the connections here.

It is the hub's :class:`~chatzilla.hub.Gate` under ``--auth link``; the rules
are :mod:`chatzilla.moderation`'s, the keeping :mod:`chatzilla.moderation_store`'s.
Each process keeps the mutes of the people it has seen (read at their join,
then changed by the actions it hears), so a message costs no round trip; a
process that lost its store's notices reads again what its people's are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from . import moderation
from .accounts import Accounts
from .backends.base import Backend, StorageError
from .hub import Client, Hub
from .identity import Person, public_of
from .moderation import BAN, MUTE, OWNER, Action, NotAllowed, Rules, Sanction
from .moderation_store import ModerationStore
from .protocol import DEFAULT_ROOM, Change, Moderate, ProtocolError, normalize_email
from .shared_reads import SharedReads

log = logging.getLogger("chatzilla.moderation")

#: The close frame of a banned person's connections: the code; the reason
#: says how long and why (see :func:`chatzilla.moderation.ban_close_reason`).
BANNED_CLOSE = 4403

_PERSON_ID = re.compile(r"p[0-9a-f]{12}")

#: Seconds the first joins after a start wait for the store to listen to the
#: other processes (a connection to Redis or Postgres: milliseconds, unless
#: it is down, when the join's own reads fail anyway).
LISTEN_WAIT = 5.0

#: The close frame's reason for those a room turning private leaves out.
PRIVATE_NOW = "This room is private now: ask its owner or a moderator to invite you"

#: Most open reports a ``reports`` frame lists (the oldest first), and the
#: messages shown before and after each reported one.
REPORTS_SHOWN = 50
CONTEXT = 2


def _report_frame(action: Action) -> dict:
    """The ``report`` frame of a report (or of its resolution) for moderators."""
    if action.kind == "resolve":
        return {
            "type": "report",
            "report": action.report,
            "resolved": True,
            "by": action.actor_public,
            "ts": action.ts,
        }
    frame = {
        "type": "report",
        "report": action.report,
        "message": action.message,
        "person": action.target_public,
        "by": action.actor_public,
        "ts": action.ts,
    }
    if action.reason:
        frame["reason"] = action.reason
    return frame


@contextlib.contextmanager
def _refused_as(ref: str | None, unavailable: str) -> Iterator[None]:
    """A moderation frame's refusals as its errors: ``bad_frame`` (a
    ValueError), ``not_allowed`` and ``unavailable`` (saying ``unavailable``)."""
    try:
        yield
    except ValueError as exc:
        raise ProtocolError("bad_frame", str(exc), ref) from None
    except NotAllowed as exc:
        raise ProtocolError("not_allowed", exc.reason, ref) from None
    except StorageError:
        raise ProtocolError("unavailable", unavailable, ref) from None


def _link_frame(action: Action) -> dict:
    """An invitation link as its room's moderators see it (never its secret)."""
    return {"id": action.link, "by": action.actor_public, "ts": action.ts, "expires": action.until}


class Moderation:
    """The moderation of one app: ``hub`` (whose gate it becomes), ``store``,
    ``accounts`` (who a person id is; whether an admin address signed in),
    ``backend`` (whether a room ever had a message), ``admins`` (addresses)."""

    def __init__(
        self,
        hub: Hub,
        store: ModerationStore,
        accounts: Accounts,
        backend: Backend,
        admins: tuple[str, ...],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._hub = hub
        self.store = store
        self._accounts = accounts
        self._backend = backend
        self._admins = admins
        self._admin_ids: dict[str, str] = {}  # address -> id, once they signed in
        self._clock = clock
        self._mutes: dict[tuple[str, str], Sanction] = {}  # (room, person id)
        # The rules and roles of the rooms people joined here (read at each
        # join, then changed by the actions heard), for each message's check.
        self._rules: dict[str, Rules] = {}
        self._roles: dict[str, dict[str, str]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._listening: asyncio.Future[None] | None = None
        self._listen_until = 0.0  # the loop's time the joins stop waiting for it
        # What each join reads, shared by a crowd joining at once
        # (chatzilla.shared_reads): a room's roles and rules, a person's sanctions.
        self._room_roles: SharedReads[str, dict[str, str]] = SharedReads(lambda room: self.store.roles(room))
        self._room_rules: SharedReads[str, Rules] = SharedReads(lambda room: self.store.rules(room))
        self._sanctions: SharedReads[tuple[str, str], list[Sanction]] = SharedReads(
            lambda key: self.store.sanctions(*key)
        )
        hub.gate = self

    # -- the hub's gate ------------------------------------------------------

    async def admit(self, room: str, key: str, invite: str | None = None) -> dict:
        """``roles`` (and ``muted``, when the person is) for ``joined``; a
        room that never had a message and has no owner becomes the joining
        person's; an uninvited person with an invitation link (``invite``,
        its secret) for a private room is invited by it. Raises ``banned``,
        ``not_invited``, ``invalid_invite`` or ``unavailable``."""
        loop = asyncio.get_running_loop()
        if self._listening is None:
            # From the first join on (the loop runs by then): before it,
            # nobody here has anything to hear.
            self._listening = self.store.listen(self._heard)
            self._listen_until = loop.time() + LISTEN_WAIT
        if not self._listening.done() and loop.time() < self._listen_until:
            # Until the other processes' actions are heard, one told between
            # this join's reading and then would be missed (a mute given
            # elsewhere as the first person came in after a start): the
            # joins wait, LISTEN_WAIT after the first at most (not each: a
            # store that cannot listen would slow every join). Past it, the
            # store reads everyone here again once it listens (listener(None)).
            await asyncio.wait([self._listening], timeout=self._listen_until - loop.time())
        person = public_of(key)
        person_id = person["id"]
        try:
            admins = await self._admin_id_set()
            roles = dict(await self._room_roles.get(room))  # a copy: claiming adds to it
            sanctions = await self._sanctions.get((room, person_id)) if person_id else []
            now = self._clock()
            for sanction in sanctions:
                if sanction.kind == BAN and sanction.active(now):
                    raise ProtocolError("banned", sanction.explain(now))
            rules = self._rules[room] = await self._room_rules.get(room)
            self._roles[room] = roles
            if not await self._lets_in(room, person_id, rules, roles, admins):
                if not (person_id and invite):
                    raise ProtocolError(
                        "not_invited", "this room is private: ask its owner or a moderator to invite you"
                    )
                await self._follow_link(room, key, invite)
            self._mutes.pop((room, person_id), None)
            for sanction in sanctions:
                if sanction.kind == MUTE and sanction.active(now):
                    self._mutes[(room, person_id)] = sanction
            if person_id and room != DEFAULT_ROOM and OWNER not in roles.values():
                await self._claim(room, key, roles)
        except StorageError:
            raise ProtocolError("unavailable", "the room's rules cannot be read now; join again") from None
        extra: dict = {"roles": {**roles, **{a: moderation.ADMIN for a in admins}}, "rules": rules.frame()}
        mute = self._mutes.get((room, person_id))
        if mute is not None:
            extra["muted"] = {"until": mute.until, "reason": mute.reason}
        return extra

    async def _follow_link(self, room: str, key: str, secret: str) -> None:
        """Invite ``key``'s person to ``room`` by the link of ``secret``, as
        its maker (the others present hear of it); raises ``invalid_invite``."""
        link = await self.store.link(room, moderation.link_id(secret))
        now = self._clock()
        if link is None:
            raise ProtocolError(
                "invalid_invite",
                "this invitation link is not valid here: it was revoked, or is for another room;"
                " ask for a new one",
            )
        if link.until is not None and link.until <= now:
            raise ProtocolError("invalid_invite", "this invitation link has expired: ask for a new one")
        person = public_of(key)
        action = Action(
            "invite", room, person["id"], link.actor, now, reason="invitation link",
            target_public=person, actor_public=link.actor_public, link=link.link,
        )  # fmt: skip
        await self.store.apply(action)
        log.info("invite: %s by link %s (room %s)", person["id"], link.link, room)
        self._hub.tell_room(room, action.frame(), skip_key=key)

    async def _lets_in(
        self, room: str, person_id: str, rules: Rules, roles: dict[str, str], admins: set[str]
    ) -> bool:
        """Whether ``room`` (with these ``rules`` and ``roles``) lets in
        ``person_id`` ("": nobody in particular): a private room only its
        invited people, moderators, owner and admins."""
        if not rules.private:
            return True
        if not person_id:
            return False
        return moderation.role_of(person_id, roles, admins) is not None or await self.store.invited(
            room, person_id
        )

    async def may_enter(self, room: str, key: str | None) -> bool:
        """Whether ``key`` (None: anyone at all) may join ``room`` as far as
        its privacy goes: what a list of rooms may show them. Bans are not
        asked. Raises :class:`StorageError`."""
        # Shared with the joins': a list naming many rooms asks what they ask.
        rules = await self._room_rules.get(room)
        if not rules.private:
            return True
        person_id = public_of(key)["id"] if key is not None else ""
        if not person_id:
            return False
        return await self._lets_in(
            room, person_id, rules, await self._room_roles.get(room), await self._admin_id_set()
        )

    def known_private(self, room: str) -> bool:
        rules = self._rules.get(room)
        return rules is not None and rules.private

    async def _claim(self, room: str, key: str, roles: dict[str, str]) -> None:
        """The room's first person owns it, if it never had a message. The
        others in the room hear of it; the claimer's ``joined`` says it."""
        _first, last = await self._backend.bounds(room)
        if last:
            return  # a room of before roles: an admin names its owner
        person = public_of(key)
        action = Action(
            "claim", room, person["id"], person["id"], self._clock(), role=OWNER,
            target_public=person, actor_public=person,
        )  # fmt: skip
        if await self.store.claim(action):
            roles[person["id"]] = OWNER
            self._hub.tell_room(room, action.frame(), skip_key=key)

    def check_say(self, room: str, key: str, ref: str | None) -> None:
        rules = self._rules.get(room)
        if rules is not None and rules.read_only:
            role = moderation.role_of(
                public_of(key)["id"], self._roles.get(room, {}), set(self._admin_ids.values())
            )
            if moderation.RANK[role] < moderation.RANK[moderation.MODERATOR]:
                raise ProtocolError(
                    "read_only", "this room is read-only: only its moderators speak here", ref
                )
        mute = self._mute(room, key)
        if mute is not None:
            now = self._clock()
            raise ProtocolError(
                "muted", mute.explain(now), ref, retry_after=None if mute.until is None else mute.until - now
            )

    def muted(self, room: str, key: str) -> bool:
        return self._mute(room, key) is not None

    def _mute(self, room: str, key: str) -> Sanction | None:
        if not self._mutes:
            return None
        person_id = public_of(key)["id"]
        mute = self._mutes.get((room, person_id))
        if mute is not None and not mute.active(self._clock()):
            del self._mutes[(room, person_id)]
            return None
        return mute

    async def _admin_id_set(self) -> set[str]:
        """The ids of the admins who signed in (each address asked until it has)."""
        for address in self._admins:
            if address not in self._admin_ids:
                person = await self._accounts.person_by_email(address)
                if person is not None:
                    self._admin_ids[address] = person.id
        return set(self._admin_ids.values())

    # -- moderation frames ---------------------------------------------------

    async def act(self, client: Client, command: Moderate) -> None:
        """Carry out a moderation frame of ``client``'s person in its room.
        Raises :class:`ProtocolError` ``not_joined``, ``bad_frame``,
        ``not_allowed``, ``unknown_person`` or ``unavailable``."""
        ref = command.ref
        joined = self._hub.member_of(client)
        if joined is None:
            raise ProtocolError("not_joined", "join a room before moderating it", ref)
        room, key = joined
        actor = public_of(key)
        now = self._clock()
        try:
            reason = moderation.check_reason(command.reason)
            until = moderation.until_of(command.minutes, now) if command.kind in (MUTE, BAN) else None
        except ValueError as exc:
            raise ProtocolError("bad_frame", str(exc), ref) from None
        if command.kind == "rules":
            await self._change_rules(client, room, actor, command, now)
            return
        if command.kind in ("report", "reports", "resolve"):
            await self._reports(client, room, key, command, now)
            return
        if command.kind in ("invite_link", "invite_links", "revoke_link"):
            await self._links(client, room, key, command, now)
            return
        if command.email is None and not _PERSON_ID.fullmatch(command.person):
            raise ProtocolError("unknown_person", "no person has this id", ref)
        try:
            target = await self._target(room, key, command)
            action = await self._decide(command, room, actor, target, now, reason, until)
            await self.store.apply(action)
        except NotAllowed as exc:
            raise ProtocolError("not_allowed", exc.reason, ref) from None
        except StorageError:
            raise ProtocolError("unavailable", "the change could not be kept; send it again", ref) from None
        log.info(
            "%s: %s %s by %s (room %s)", action.kind, action.target, action.role or "", actor["id"], room
        )
        self.apply(action, ref=ref, origin=client)

    async def _target(self, room: str, key: str, command: Moderate) -> Person:
        """The person a moderation frame names, by ``person`` (an id) or, for
        invite and uninvite, ``email`` (looked up for the room's moderators
        alone: to others it would tell who has an account); raises
        ``unknown_person`` or :class:`NotAllowed`."""
        ref = command.ref
        if command.email is None:
            target = await self._accounts.person_by_id(command.person)
            if target is None:
                raise ProtocolError("unknown_person", "no person has this id", ref)
            return target
        roles = await self.store.roles(room)
        moderation.check_invite(moderation.role_of(public_of(key)["id"], roles, await self._admin_id_set()))
        try:
            email = normalize_email(command.email)
        except ProtocolError as exc:
            raise ProtocolError(exc.code, exc.reason, ref) from None
        # Counted as a message: asking address after address is slow.
        self._hub.count_as_message(key, ref)
        target = await self._accounts.person_by_email(email)
        if target is None:
            raise ProtocolError(
                "unknown_person",
                "nobody has signed in with this address yet: send them an invitation link instead",
                ref,
            )
        return target

    async def _links(self, client: Client, room: str, key: str, command: Moderate, now: float) -> None:
        """``invite_link`` (a new link to the room, answered with its secret
        to the sender alone), ``invite_links`` (the room's unexpired ones)
        and ``revoke_link``: the room's moderators, owner and admins."""
        ref = command.ref
        actor = public_of(key)
        with _refused_as(ref, "invitation links cannot be kept or read now"):
            if room == DEFAULT_ROOM:
                raise NotAllowed("the lobby is for everyone: it needs no invitation")
            admins = await self._admin_id_set()
            roles = await self.store.roles(room)
            moderation.check_invite(moderation.role_of(actor["id"], roles, admins))
            live = [link for link in await self.store.links(room) if link.until is None or link.until > now]
            if command.kind == "invite_links":
                frame = {"type": "invite_links", "links": [_link_frame(link) for link in live], "ref": ref}
                self._hub.tell_one(client, frame)
                return
            nobody = dict(moderation.NOBODY)
            if command.kind == "revoke_link":
                if await self.store.link(room, command.link or "") is None:
                    raise ProtocolError("not_found", "this room has no invitation link with this id", ref)
                await self.store.apply(
                    Action(
                        "unlink", room, "", actor["id"], now, actor_public=actor, target_public=nobody,
                        link=command.link,
                    )
                )  # fmt: skip
                self._hub.tell_one(client, {"type": "link_revoked", "id": command.link, "ref": ref})
                return
            until = moderation.link_until(command.hours, now)
            if len(live) >= moderation.MAX_LINKS:
                raise NotAllowed(f"this room has {moderation.MAX_LINKS} invitation links: revoke one first")
            self._hub.count_as_message(key, ref)
            secret, link = moderation.new_link()
            action = Action(
                "link", room, "", actor["id"], now, until=until, actor_public=actor, target_public=nobody,
                link=link,
            )  # fmt: skip
            await self.store.apply(action)
        log.info("link: %s by %s (room %s)", link, actor["id"], room)
        answer = {"type": "invite_link", "secret": secret, **_link_frame(action), "ref": ref}
        self._hub.tell_one(client, answer)

    async def delete(self, client: Client, command: Change, refused: ProtocolError) -> None:
        """A ``delete`` of someone else's message (``refused`` as not
        theirs): carried out when the sender is a moderator here above the
        message's sender, kept in the audit log with ``command.reason`` and
        told to the room as a ``moderated`` frame; else ``refused`` stands
        (a member deletes only their own), or ``not_allowed``."""
        ref = command.ref
        joined = self._hub.member_of(client)
        if joined is None:
            raise refused
        room, key = joined
        actor = public_of(key)
        try:
            reason = moderation.check_reason(command.reason)
        except ValueError as exc:
            raise ProtocolError("bad_frame", str(exc), ref) from None
        try:
            admins = await self._admin_id_set()
            roles = await self.store.roles(room)
            actor_role = moderation.role_of(actor["id"], roles, admins)
            if moderation.RANK[actor_role] < moderation.RANK[moderation.MODERATOR]:
                raise refused
            message = await self._backend.get(room, command.id)
            if message is None:
                raise ProtocolError("not_found", f"room {room} has no message {command.id}", ref)
            sender = public_of(message.sender)
            moderation.check_sanction(actor_role, moderation.role_of(sender["id"], roles, admins), "delete")
            await self._hub.delete_message(
                room,
                command.id,
                actor=key,
                reason=reason,
                answer=client,
                ref=ref,
            )
            action = Action(
                "delete", room, sender["id"], actor["id"], self._clock(), reason=reason,
                target_public=sender, actor_public=actor, message=command.id,
            )  # fmt: skip
            await self.store.apply(action)
        except NotAllowed as exc:
            raise ProtocolError("not_allowed", exc.reason, ref) from None
        except StorageError:
            raise ProtocolError("unavailable", "the change could not be kept; send it again", ref) from None
        self.apply(action)

    async def _reports(self, client: Client, room: str, key: str, command: Moderate, now: float) -> None:
        """``report`` (anyone: a message to the room's moderators), ``reports``
        (the open ones, each message with the few around it) and ``resolve``
        (a moderator closes one); ``key``: the sender's."""
        ref = command.ref
        actor = public_of(key)
        try:
            reason = moderation.check_reason(command.reason)
        except ValueError as exc:
            raise ProtocolError("bad_frame", str(exc), ref) from None
        try:
            if command.kind == "report":
                assert command.message is not None
                # Counted as a message, so a flood of reports is refused.
                self._hub.count_as_message(key, ref)
                message = await self._backend.get(room, command.message)
                if message is None or message.deleted:
                    raise ProtocolError("not_found", f"room {room} has no message {command.message}", ref)
                sender = public_of(message.sender)
                action, new = await self.store.report(
                    Action(
                        "report", room, sender["id"], actor["id"], now, reason=reason,
                        target_public=sender, actor_public=actor, message=command.message,
                    )
                )  # fmt: skip
                self._hub.tell_one(
                    client,
                    {"type": "reported", "report": action.report, "message": command.message, "ref": ref},
                )
                if new:  # A repeat of an open report is answered alone: moderators heard it once.
                    self.apply(action)
                return
            admins = await self._admin_id_set()
            roles = await self.store.roles(room)
            actor_role = moderation.role_of(actor["id"], roles, admins)
            if moderation.RANK[actor_role] < moderation.RANK[moderation.MODERATOR]:
                raise NotAllowed("only the room's moderators, its owner and admins see and resolve reports")
            if command.kind == "resolve":
                action = Action(
                    "resolve", room, "", actor["id"], now, reason=reason, actor_public=actor,
                    target_public=dict(moderation.NOBODY), report=command.report,
                )  # fmt: skip
                await self.store.apply(action)
                self.apply(action, ref=ref, origin=client)
                return
            frames = []
            for report in await self.store.reports(room, REPORTS_SHOWN):
                frame = _report_frame(report)
                mid = report.message or 0
                around = await self._backend.page(
                    room, max(0, mid - CONTEXT - 1), mid + CONTEXT + 1, 2 * CONTEXT + 1
                )
                frame["context"] = [self._hub.message_frame(m) for m in around]
                frames.append(frame)
            self._hub.tell_one(client, {"type": "reports", "reports": frames, "ref": ref})
        except moderation.TooManyReports as exc:
            raise ProtocolError("too_many_reports", exc.reason, ref) from None
        except NotAllowed as exc:
            raise ProtocolError("not_allowed", exc.reason, ref) from None
        except StorageError:
            raise ProtocolError("unavailable", "reports cannot be kept or read now; try again", ref) from None

    async def _change_rules(
        self, client: Client, room: str, actor: dict, command: Moderate, now: float
    ) -> None:
        """A ``rules`` frame: the owner's or an admin's."""
        ref = command.ref
        with _refused_as(ref, "the change could not be kept; send it again"):
            admins = await self._admin_id_set()
            roles = await self.store.roles(room)
            moderation.check_rules(moderation.role_of(actor["id"], roles, admins))
            if room == DEFAULT_ROOM and command.private:
                raise NotAllowed("the lobby is for everyone: it cannot be private")
            rules = (await self.store.rules(room)).changed(command.topic, command.private, command.read_only)
            action = Action(
                "rules", room, "", actor["id"], now, target_public=dict(moderation.NOBODY),
                actor_public=actor, rules=rules.frame(),
            )  # fmt: skip
            await self.store.apply(action)
        self.apply(action, ref=ref, origin=client)

    async def _decide(
        self,
        command: Moderate,
        room: str,
        actor: dict,
        target: Person,
        now: float,
        reason: str,
        until: float | None,
    ) -> Action:
        """The action ``command`` asks for, if the actor may; raises :class:`NotAllowed`."""
        if target.id == actor["id"]:
            # A rank acts on those below it, so never on oneself: an owner
            # who made themselves a moderator would leave a new room to
            # whoever came in next.
            raise NotAllowed("nobody moderates themselves")
        admins = await self._admin_id_set()
        roles = await self.store.roles(room)
        actor_role = moderation.role_of(actor["id"], roles, admins)
        target_role = moderation.role_of(target.id, roles, admins)
        role = command.role
        if command.kind == "grant":
            if role is None:
                raise NotAllowed("grant names a role: moderator (or owner, by an admin)")
            moderation.check_role_change(actor_role, target_role, role)
            if role == OWNER and room == DEFAULT_ROOM:
                raise NotAllowed("the lobby has no owner: admins look after it")
        elif command.kind in ("invite", "uninvite"):
            moderation.check_invite(actor_role)
        elif command.kind == "revoke":
            role = roles.get(target.id)
            if role is None:
                raise NotAllowed("this person has no role in this room")
            moderation.check_role_change(actor_role, target_role, role)
        else:
            moderation.check_sanction(actor_role, target_role, command.kind)
        return Action(
            command.kind, room, target.id, actor["id"], now, reason=reason, until=until, role=role,
            target_public=target.public(), actor_public=actor,
        )  # fmt: skip

    # -- applying changes ----------------------------------------------------

    def apply(self, action: Action, ref: str | None = None, origin: Client | None = None) -> None:
        """Carry ``action`` out on this process's connections: tell the room
        (``origin``'s copy with ``ref``, its acknowledgement), keep a mute,
        forget a lifted one, close a banned person's connections."""
        if action.kind in moderation.QUIET:
            return  # kept and audited; its answer went to its sender
        if action.kind == MUTE:
            self._mutes[(action.room, action.target)] = action.sanction()
        elif action.kind == "unmute":
            self._mutes.pop((action.room, action.target), None)
        elif action.kind == "rules" and action.rules is not None:
            before = self._rules.get(action.room)
            self._rules[action.room] = Rules(**action.rules)
            if action.rules.get("private") and not (before is not None and before.private):
                self._spawn(self._close_uninvited(action.room))
        elif action.kind in ("grant", "claim") and action.role is not None and action.room in self._roles:
            roles = self._roles[action.room]
            if action.role == OWNER:
                for person in [p for p, r in roles.items() if r == OWNER]:
                    del roles[person]
            roles[action.target] = action.role
        elif action.kind == "revoke" and action.room in self._roles:
            self._roles[action.room].pop(action.target, None)
        if action.kind in ("report", "resolve"):
            # To the room's moderators alone (the reporter got "reported").
            frame = _report_frame(action)
            self._hub.tell_room(
                action.room, frame, skip=origin, only=lambda key: self._moderates(action.room, key)
            )
            if origin is not None:
                self._hub.tell_one(origin, {**frame, "ref": ref} if ref is not None else frame)
            return
        frame = action.frame()
        self._hub.tell_room(action.room, frame, skip=origin)
        if origin is not None:
            self._hub.tell_one(origin, {**frame, "ref": ref} if ref is not None else frame)
        if action.kind == BAN:
            self._close_banned(action.room, action.target, action.sanction())
        rules = self._rules.get(action.room)
        if action.kind == "uninvite" and rules is not None and rules.private:
            roles = self._roles.get(action.room, {})
            if moderation.role_of(action.target, roles, set(self._admin_ids.values())) is None:

                def theirs(key: str) -> bool:
                    return public_of(key)["id"] == action.target

                self._hub.close_in_room(
                    action.room, theirs, BANNED_CLOSE, "This room is private: you are not invited any more"
                )

    def _moderates(self, room: str, key: str) -> bool:
        """Whether ``key`` is a moderator (or above) in ``room``, as this process knows."""
        role = moderation.role_of(
            public_of(key)["id"], self._roles.get(room, {}), set(self._admin_ids.values())
        )
        return moderation.RANK[role] >= moderation.RANK[moderation.MODERATOR]

    def _close_banned(self, room: str, person_id: str, ban: Sanction) -> None:
        """Close every connection of ``person_id`` in ``room`` here, saying why."""

        def theirs(key: str) -> bool:
            return public_of(key)["id"] == person_id

        closed = self._hub.close_in_room(room, theirs, BANNED_CLOSE, moderation.ban_close_reason(ban))
        if closed:
            log.info("closed %d connections of banned %s (room %s)", closed, person_id, room)

    async def _close_uninvited(self, room: str) -> None:
        """The room turned private: close the connections here of those in
        it who are neither invited nor its moderators, owner or admins. When
        the store cannot say, they are closed all the same: their next join
        is checked."""
        try:
            admins = await self._admin_id_set()
        except StorageError:
            admins = set(self._admin_ids.values())
        out: set[str] = set()
        for here, key in self._hub.present_here():
            if here != room:
                continue
            person_id = public_of(key)["id"]
            if moderation.role_of(person_id, self._roles.get(room, {}), admins) is not None:
                continue
            try:
                invited = bool(person_id) and await self.store.invited(room, person_id)
            except StorageError:
                invited = False
            if not invited:
                out.add(key)
        # One pass over the room's connections, not one a person.
        self._hub.close_in_room(room, out.__contains__, BANNED_CLOSE, PRIVATE_NOW)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _heard(self, action: Action | None) -> None:
        """Another process's action, or None: notices may have been lost."""
        if action is not None:
            self.apply(action)
            return
        self._spawn(self._read_again())

    async def _read_again(self) -> None:
        """Read the sanctions of everyone here again (notices were lost):
        close the banned, keep the muted."""
        now = self._clock()
        for room, key in self._hub.present_here():
            person_id = public_of(key)["id"]
            if not person_id:
                continue
            try:
                sanctions = await self.store.sanctions(room, person_id)
            except StorageError:
                return  # lost again: the next reconnection reads again
            self._mutes.pop((room, person_id), None)
            for sanction in sanctions:
                if not sanction.active(now):
                    continue
                if sanction.kind == MUTE:
                    self._mutes[(room, person_id)] = sanction
                else:
                    self._close_banned(room, person_id, sanction)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.store.close()
