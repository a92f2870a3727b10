"""The moderation stores, the same contract on each (memory, SQLite, Redis,
Postgres): roles, one owner, sanctions, lifting, the audit log; kept across
a reopen (the durable ones); heard by another process's store (the shared
ones); and the rules of :mod:`chatzilla.moderation` themselves."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid

import pytest

from chatzilla import moderation, moderation_store
from chatzilla.moderation import Action, NotAllowed
from chatzilla.moderation_store import (
    MemoryModeration,
    PostgresModeration,
    RedisModeration,
    SQLiteModeration,
)

from .helpers import redis_or_skip

REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def kind(request):
    return request.param


@pytest.fixture
def make_store(kind, tmp_path, request):
    """``make_store()``: a store of the parametrized kind; every call of one
    test opens the same data (a second process, or the same after a restart)."""
    if kind == "memory":
        shared = MemoryModeration()
        yield lambda: shared
        return
    if kind == "sqlite":
        path = str(tmp_path / "chatzilla.db")
        yield lambda: SQLiteModeration(path)
        return
    if kind == "postgres":
        url = request.getfixturevalue("database_url")
        yield lambda: PostgresModeration(url)
        return
    client = redis_or_skip(REDIS_URL)
    prefix = f"chatzilla-test-{uuid.uuid4().hex[:12]}"
    yield lambda: RedisModeration(REDIS_URL, prefix)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def act(kind: str, target: str, **fields) -> Action:
    return Action(kind, fields.pop("room", "dev"), target, fields.pop("actor", "powner"), 1000.0, **fields)


def test_roles_sanctions_and_the_audit_log_are_kept(make_store):
    async def scenario():
        store = make_store()
        try:
            assert await store.claim(act("claim", "powner", role="owner", actor="powner"))
            assert not await store.claim(act("claim", "psecond", role="owner", actor="psecond"))
            await store.apply(act("grant", "pmod", role="moderator"))
            await store.apply(act("mute", "pspam", until=1600.0, reason="spam"))
            await store.apply(act("ban", "pspam", reason="more spam"))
            await store.apply(act("ban", "pother", room="elsewhere", until=2000.0))
            await store.apply(act("unban", "pother", room="elsewhere"))
            await store.apply(act("unban", "pnobody"))  # nothing to lift: audited all the same
        finally:
            await store.close()
        again = make_store()  # a restart (or another process)
        try:
            roles = await again.roles("dev")
            sanctions = {s.kind: s for s in await again.sanctions("dev", "pspam")}
            lifted = await again.sanctions("elsewhere", "pother")
            log = await again.audit(None, 100)
            dev_log = await again.audit("dev", 2)
            rooms = await again.rooms()
        finally:
            await again.close()
        return roles, sanctions, lifted, log, dev_log, rooms

    roles, sanctions, lifted, log, dev_log, rooms = asyncio.run(scenario())
    assert roles == {"powner": "owner", "pmod": "moderator"}
    assert sanctions["mute"].until == 1600.0 and sanctions["mute"].reason == "spam"
    assert sanctions["ban"].until is None and sanctions["ban"].active(10**12)
    assert not sanctions["mute"].active(1600.0) and sanctions["mute"].active(1599.0)
    assert lifted == []
    assert [a.kind for a in log] == ["claim", "grant", "mute", "ban", "ban", "unban", "unban"]
    assert log[2].reason == "spam" and log[2].actor == "powner" and log[2].until == 1600.0
    assert [a.kind for a in dev_log] == ["ban", "unban"]
    assert rooms == ["dev"]


def test_one_owner_at_a_time_and_roles_come_off(make_store):
    async def scenario():
        store = make_store()
        try:
            await store.apply(act("grant", "pfirst", role="owner", actor=""))
            await store.apply(act("grant", "psecond", role="owner", actor=""))
            await store.apply(act("grant", "pmod", role="moderator"))
            await store.apply(act("revoke", "pmod", role="moderator"))
            return await store.roles("dev")
        finally:
            await store.close()

    assert asyncio.run(scenario()) == {"psecond": "owner"}


def test_two_first_comers_make_one_owner(make_store):
    async def scenario():
        stores = [make_store() for _ in range(2)]
        try:
            claims = await asyncio.gather(
                *(s.claim(act("claim", f"p{n}", role="owner")) for n, s in enumerate(stores))
            )
            return claims, await stores[0].roles("dev")
        finally:
            for store in stores:
                await store.close()

    claims, roles = asyncio.run(scenario())
    assert sorted(claims) == [False, True]
    assert list(roles.values()) == ["owner"]


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_another_process_hears_each_action_once_and_not_its_own(make_store):
    async def scenario():
        here, there = make_store(), make_store()
        heard_here: list = []
        heard_there: asyncio.Queue = asyncio.Queue()
        listening = [here.listen(heard_here.append), there.listen(heard_there.put_nowait)]
        try:
            # Once listen's future is done, every action is heard: the very
            # first one too (a join after a start waits for it).
            await asyncio.wait_for(asyncio.gather(*listening), 10)
            # What was told before may have been missed: "read again".
            missed = heard_there.get_nowait()
            await here.apply(act("mute", "pspam", until=5000.0, reason="spam"))
            first = await asyncio.wait_for(heard_there.get(), 10)
            await here.apply(act("ban", "pspam", reason="ads"))
            second = await asyncio.wait_for(heard_there.get(), 10)
            return missed, first, second, heard_here
        finally:
            await here.close()
            await there.close()

    missed, first, second, heard_here = asyncio.run(scenario())
    assert missed is None
    assert first.kind == "mute" and first.until == 5000.0 and first.reason == "spam"
    assert second.kind == "ban" and second.until is None and second.target == "pspam"
    assert heard_here == [None]  # its own actions: never


# -- the rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        ("admin", "owner", True),
        ("admin", "admin", False),
        ("owner", "moderator", True),
        ("owner", None, True),
        ("owner", "owner", False),
        ("moderator", None, True),
        ("moderator", "moderator", False),
        ("moderator", "owner", False),
        (None, None, False),
    ],
)
def test_who_may_mute_or_ban_whom(actor, target, allowed):
    if allowed:
        moderation.check_sanction(actor, target, "ban")
    else:
        with pytest.raises(NotAllowed):
            moderation.check_sanction(actor, target, "ban")


@pytest.mark.parametrize(
    ("actor", "target", "role", "allowed"),
    [
        ("owner", None, "moderator", True),
        ("admin", "moderator", "moderator", True),
        ("admin", None, "owner", True),
        ("owner", None, "owner", False),
        ("moderator", None, "moderator", False),
        ("admin", "admin", "moderator", False),
        ("admin", None, "admin", False),
    ],
)
def test_who_may_name_whom(actor, target, role, allowed):
    if allowed:
        moderation.check_role_change(actor, target, role)
    else:
        with pytest.raises(NotAllowed):
            moderation.check_role_change(actor, target, role)


def test_time_left_and_limits_read_well():
    assert moderation.time_left(1000 + 3 * 86400 + 7200, 1000) == "3 d 2 h"
    assert moderation.time_left(1000 + 3900, 1000) == "1 h 5 min"
    assert moderation.time_left(1000 + 250, 1000) == "4 min 10 s"
    assert moderation.time_left(1000.2, 1000) == "1 s"
    assert moderation.until_of(None, 5.0) is None and moderation.until_of(2, 5.0) == 125.0
    for bad in (0, moderation.MAX_MINUTES + 1):
        with pytest.raises(ValueError):
            moderation.until_of(bad, 5.0)
    assert moderation.check_reason("  spam \n links ") == "spam links"
    with pytest.raises(ValueError):
        moderation.check_reason("x" * 201)


def test_an_action_goes_through_json_unchanged():
    action = act(
        "ban", "pspam", until=None, reason="ads", target_public={"id": "pspam", "name": "S", "avatar": ""}
    )
    assert Action.from_json(action.to_json()) == action
    for bad in ("[]", '{"kind": "explode"}', "not json"):
        with pytest.raises(ValueError):
            Action.from_json(bad)


def test_rules_and_invitations_are_kept(make_store):
    from chatzilla.moderation import Rules

    async def scenario():
        store = make_store()
        try:
            before = await store.rules("dev"), await store.invited("dev", "pguest")
            rules = Rules("the team's room", private=True).frame()
            await store.apply(act("rules", "", rules=rules))
            await store.apply(act("invite", "pguest"))
            await store.apply(act("invite", "pother"))
            await store.apply(act("uninvite", "pother"))
        finally:
            await store.close()
        again = make_store()
        try:
            after = (
                await again.rules("dev"),
                await again.invited("dev", "pguest"),
                await again.invited("dev", "pother"),
            )
            log = [a.kind for a in await again.audit("dev", 10)]
            return before, after, log
        finally:
            await again.close()

    before, after, log = asyncio.run(scenario())
    assert before == (Rules(), False)
    assert after == (Rules("the team's room", True, False), True, False)
    assert log == ["rules", "invite", "invite", "uninvite"]


def test_reports_stay_open_until_resolved(make_store):
    async def scenario():
        store = make_store()
        try:
            first, new = await store.report(
                act("report", "pspam", actor="preporter", message=4, reason="ads")
            )
            assert new
            # The same report again while it is open: that one, nothing new.
            repeat, new = await store.report(act("report", "pspam", actor="preporter", message=4, reason="x"))
            assert (repeat.report, repeat.reason, new) == (first.report, "ads", False)
            second, _ = await store.report(act("report", "pspam", actor="pother", message=5))
            elsewhere, _ = await store.report(act("report", "pspam", room="lobby", actor="pother", message=1))
            await store.apply(act("resolve", "", report=first.report, reason="deleted"))
            await store.apply(act("resolve", "", room="lobby", report=second.report))  # not the lobby's
        finally:
            await store.close()
        again = make_store()
        try:
            # Resolved, it may be reported anew (by a store of another process too).
            anew, new = await again.report(act("report", "pspam", actor="preporter", message=4))
            assert new and anew.report not in (first.report, second.report, elsewhere.report)
            await again.apply(act("resolve", "", report=anew.report))
            return first, second, elsewhere, await again.reports("dev", 10), await again.reports("lobby", 10)
        finally:
            await again.close()

    first, second, elsewhere, dev, lobby = asyncio.run(scenario())
    assert len({first.report, second.report, elsewhere.report}) == 3
    assert [(a.report, a.message, a.actor) for a in dev] == [(second.report, 5, "pother")]
    assert [a.report for a in lobby] == [elsewhere.report]
    assert first.reason == "ads" and first.kind == "report"


def test_invitation_links_are_kept_until_revoked_or_expired(make_store):
    async def scenario():
        store = make_store()
        try:
            await store.apply(act("link", "", link="old", until=1500.0))
            await store.apply(act("link", "", link="kept", until=5000.0))
            await store.apply(act("link", "", link="other", until=5000.0, room="elsewhere"))
            await store.apply(act("link", "", link="gone", until=5000.0))
            await store.apply(act("unlink", "", link="gone"))
        finally:
            await store.close()
        again = make_store()
        try:
            found = await again.link("dev", "kept"), await again.link("dev", "other")
            before = [a.link for a in await again.links("dev")]
            # A link made later (at 2000) forgets the room's expired ones.
            await again.apply(dataclasses.replace(act("link", "", link="new", until=9000.0), ts=2000.0))
            after = [a.link for a in await again.links("dev")]
            log = [a.kind for a in await again.audit("dev", 10)]
        finally:
            await again.close()
        return found, before, after, log

    (kept, other), before, after, log = asyncio.run(scenario())
    assert kept is not None and (kept.kind, kept.until, kept.actor) == ("link", 5000.0, "powner")
    assert other is None  # a link is its room's alone
    assert sorted(before) == ["kept", "old"] and sorted(after) == ["kept", "new"]
    assert log == ["link", "link", "link", "unlink", "link"]


def test_one_persons_open_reports_are_capped(make_store):
    async def scenario():
        store = make_store()
        try:
            kept = []
            for message in range(1, moderation.MAX_OPEN_REPORTS + 1):
                report, new = await store.report(act("report", "psender", actor="preporter", message=message))
                assert new
                kept.append(report)
            with pytest.raises(moderation.TooManyReports):
                await store.report(act("report", "psender", actor="preporter", message=99))
            again, new = await store.report(act("report", "psender", actor="preporter", message=1))
            assert (again.report, new) == (kept[0].report, False)
            await store.apply(act("resolve", "", report=kept[1].report))
            _, new = await store.report(act("report", "psender", actor="preporter", message=99))
            assert new
            with pytest.raises(moderation.TooManyReports):
                await store.report(act("report", "psender", actor="preporter", message=100))
            # Another reporter, or another room, counts apart.
            assert (await store.report(act("report", "psender", actor="pother", message=100)))[1]
            assert (await store.report(act("report", "psender", actor="preporter", message=1, room="x")))[1]
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["redis"])
def test_redis_keeps_the_newest_audit_entries_alone(make_store, monkeypatch):
    monkeypatch.setattr(moderation_store, "REDIS_AUDIT_KEPT", 3)

    async def scenario():
        store = make_store()
        try:
            for n in range(5):
                await store.apply(act("mute", f"p{n}"))
            return [a.target for a in await store.audit(None, 10)]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == ["p2", "p3", "p4"]
