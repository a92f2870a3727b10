"""Moderation over a real server (``--auth link``, protocol 2): roles, the
owner of a new room, mutes and bans and their lifting, who may do what, on
every backend (memory, SQLite, Redis, Postgres). People are signed in by
sessions kept in the server's own accounts store, as the sign-in pages keep
them (the pages themselves are test_signin_flow's)."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from chatzilla.identity import Person, new_person_id
from chatzilla.signin import digest, new_secret

from .conftest import make_settings
from .helpers import redis_or_skip

ADMIN = "admin@example.com"
REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def settings(request, tmp_path):
    rate = request.node.get_closest_marker("rate_limit")
    common = {"auth": "link", "admins": (ADMIN,), "rate_limit": rate.args[0] if rate else 0.0}
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("database_url"), **common)
    if request.param == "redis":
        return redis_settings(request, **common)
    return make_settings(storage=request.param, db=str(tmp_path / "chatzilla.db"), **common)


def redis_settings(request, **common):
    """Test settings on the tests' Redis, under a key prefix of the test's
    own (its keys dropped after it); the test is skipped without a Redis."""
    client = redis_or_skip(REDIS_URL)
    prefix = f"chatzilla-test-{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: _drop_prefix(client, prefix))
    return make_settings(redis_url=REDIS_URL, redis_prefix=prefix, **common)


def _drop_prefix(client, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def person(app, connect):
    """``await person(email, name, room=None)``: a connection of a person
    signed in (a session of the server's accounts), joined to ``room``
    unless it is None; returns ``(client, public, joined)``."""
    accounts = app.signin.accounts

    async def make(email: str, name: str, room: str | None = "dev", token: bool = False):
        who = await accounts.add_person(Person(new_person_id(), email, name))
        secret = new_secret()
        await accounts.add_session(digest(secret), who.id, time.time() + 3600)
        client = await connect("websocket", headers={"Cookie": f"chatzilla_session={secret}"})
        client.person = who
        client.secret = secret
        joined = None
        if room is not None:
            await client.send({"type": "join", "room": room})
            joined = await client.expect("joined")
        return client, who.public(), joined

    return make


async def answer(client, ref: str) -> dict:
    """The next frame that carries ``ref`` (the answer to the frame that
    had it), past presence and others' frames."""
    while True:
        frame = await client.recv()
        if frame.get("ref") == ref:
            return frame


async def rejoin(connect, secret: str, room: str = "dev"):
    """A new connection of the same browser, joining ``room``; its first answer."""
    client = await connect("websocket", headers={"Cookie": f"chatzilla_session={secret}"})
    await client.send({"type": "join", "room": room, "ref": "j"})
    return client, await client.recv()


@pytest.mark.gen_test(timeout=30)
async def test_the_first_person_in_a_new_room_owns_it_and_names_moderators(person):
    alice, a, joined = await person("alice@example.com", "Alice")
    assert joined["roles"] == {a["id"]: "owner"}
    bob, b, joined = await person("bob@example.com", "Bob")
    assert joined["roles"] == {a["id"]: "owner"}  # the first, not the latest
    await alice.expect("presence")
    carol, c, _ = await person("carol@example.com", "Carol")
    await alice.expect("presence")
    await bob.expect("presence")
    # A member names nobody.
    await carol.send({"type": "grant", "person": b["id"], "role": "moderator", "ref": "g0"})
    refused = await carol.expect("error")
    assert refused["code"] == "not_allowed" and refused["ref"] == "g0"
    await alice.send({"type": "grant", "person": b["id"], "role": "moderator", "ref": "g1"})
    done = await alice.expect("moderated")
    assert done["ref"] == "g1" and done["action"] == "grant" and done["role"] == "moderator"
    assert done["person"] == b and done["by"] == a
    for other in (bob, carol):
        seen = await other.expect("moderated")
        assert seen["person"] == b and "ref" not in seen
    # Only an admin names an owner.
    await alice.send({"type": "grant", "person": c["id"], "role": "owner", "ref": "g2"})
    assert (await alice.expect("error"))["code"] == "not_allowed"
    # The role is kept: a later join says so.
    _, _, joined = await person("dave@example.com", "Dave")
    assert joined["roles"] == {a["id"]: "owner", b["id"]: "moderator"}
    await alice.expect("presence")
    await alice.send({"type": "revoke", "person": b["id"], "ref": "r1"})
    assert (await alice.expect("moderated"))["action"] == "revoke"
    _, _, joined = await person("erin@example.com", "Erin")
    assert joined["roles"] == {a["id"]: "owner"}


@pytest.mark.gen_test(timeout=30)
async def test_the_lobby_has_no_owner_and_admins_moderate_every_room(person):
    alice, a, joined = await person("alice@example.com", "Alice", room="lobby")
    assert joined["roles"] == {}
    root, r, joined = await person(ADMIN, "Root", room="lobby")
    assert joined["roles"] == {r["id"]: "admin"}
    await alice.expect("presence")
    await root.send({"type": "mute", "person": a["id"], "minutes": 5, "reason": "calm down", "ref": "m"})
    assert (await root.expect("moderated"))["ref"] == "m"
    assert (await alice.expect("moderated"))["action"] == "mute"
    # An owner of another room is nobody here; nobody acts on an admin.
    owner, o, _ = await person("olga@example.com", "Olga", room="olgas")
    await owner.send({"type": "leave"})
    await owner.send({"type": "join", "room": "lobby"})
    await owner.expect("joined")
    await owner.send({"type": "ban", "person": r["id"], "ref": "b"})
    assert (await owner.expect("error"))["code"] == "not_allowed"
    # The admin names a moderator of the lobby, and an owner of a room of before.
    await root.send({"type": "grant", "person": o["id"], "role": "moderator", "ref": "g"})
    assert (await answer(root, "g"))["role"] == "moderator"
    await root.send({"type": "grant", "person": o["id"], "role": "owner", "ref": "o"})
    assert (await answer(root, "o"))["code"] == "not_allowed"  # the lobby has no owner


@pytest.mark.gen_test(timeout=30)
async def test_a_muted_person_is_told_how_long_and_why_until_unmuted(person):
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    await alice.send({"type": "mute", "person": b["id"], "minutes": 10, "reason": "spam", "ref": "m"})
    done = await alice.expect("moderated")
    assert done["until"] == pytest.approx(done["ts"] + 600) and done["reason"] == "spam"
    heard = await bob.expect("moderated")
    assert heard["action"] == "mute" and heard["person"] == b
    await bob.send({"type": "message", "content": "buy now", "ref": "x"})
    refused = await bob.expect("error")
    assert refused["code"] == "muted" and refused["ref"] == "x"
    assert re.fullmatch(
        r"you are muted in this room for another (10 min 0|9 min \d+) s: spam", refused["reason"]
    )
    assert 570 < refused["retry_after"] <= 600
    await bob.send({"type": "typing"})  # dropped: nobody hears a muted person type
    # Catching up later: the join says so.
    _, _, joined = await rejoin_as(person, bob)
    assert joined["muted"]["reason"] == "spam"
    await alice.send({"type": "unmute", "person": b["id"], "ref": "u"})
    assert (await alice.expect("moderated"))["action"] == "unmute"
    assert (await bob.expect("moderated"))["action"] == "unmute"
    await bob.say("sorry", "y")
    message = await alice.expect("message")  # no typing frame came first
    assert message["content"] == "sorry"


async def rejoin_as(person, client):
    """Another connection of ``client``'s person (a second browser), joined to dev."""
    return await person(client.person.email, client.person.name)


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_closes_the_persons_connections_saying_why_and_keeps_them_out(person, connect, app):
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    token = "czb_" + new_secret()
    await app.signin.accounts.add_token(digest(token), b["id"], "bot", time.time())
    await alice.send({"type": "ban", "person": b["id"], "reason": "spam links", "ref": "b"})
    assert (await alice.expect("moderated"))["until"] is None
    assert (await bob.expect("moderated"))["action"] == "ban"
    closed = await bob.expect("_close")
    assert closed["code"] == 4403 and closed["reason"] == "Banned from this room until lifted: spam links"
    assert (await alice.expect("presence"))["event"] == "leave"
    # The same browser cannot come back, nor the person's bot.
    _, answer = await rejoin(connect, bob.secret)
    assert answer["code"] == "banned" and answer["ref"] == "j"
    assert answer["reason"] == "you are banned from this room until lifted: spam links"
    bot = await connect("raw-websocket")
    await bot.send({"type": "join", "token": token, "room": "dev"})
    assert (await bot.expect("error"))["code"] == "banned"
    # Other rooms are not this one.
    _elsewhere, answer = await rejoin(connect, bob.secret, room="elsewhere")
    assert answer["type"] == "joined"
    await alice.send({"type": "unban", "person": b["id"], "ref": "u"})
    assert (await alice.expect("moderated"))["action"] == "unban"
    _again, answer = await rejoin(connect, bob.secret)
    assert answer["type"] == "joined"


@pytest.mark.gen_test(timeout=30)
async def test_a_ban_for_a_time_says_how_long(person, connect):
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    await alice.send({"type": "ban", "person": b["id"], "minutes": 90, "ref": "b"})
    assert (await alice.expect("moderated"))["until"] == pytest.approx(time.time() + 5400, abs=30)
    assert (await bob.expect("moderated"))["until"] is not None
    closed = await bob.expect("_close")
    assert closed["reason"] == "Banned from this room for 1 h 30 min"
    _, answer = await rejoin(connect, bob.secret)
    assert re.fullmatch(r"you are banned from this room for another 1 h (30|29) min", answer["reason"])


@pytest.mark.gen_test(timeout=30)
async def test_who_may_act_on_whom(person):
    owner, o, _ = await person("olga@example.com", "Olga")
    mod, m, _ = await person("max@example.com", "Max")
    _mod2, m2, _ = await person("mia@example.com", "Mia")
    member, p, _ = await person("pat@example.com", "Pat")
    for role_of in (m, m2):
        await owner.send({"type": "grant", "person": role_of["id"], "role": "moderator"})
    frames = [f for f in [await owner.recv() for _ in range(5)] if f["type"] == "moderated"]
    assert len(frames) == 2

    async def refused(client, frame, code="not_allowed"):
        await client.send({**frame, "ref": "r"})
        got = await answer(client, "r")
        assert got["type"] == "error" and got["code"] == code, got

    await refused(mod, {"type": "ban", "person": o["id"]})  # above them
    await refused(mod, {"type": "mute", "person": m2["id"], "minutes": 1})  # their peer
    await refused(mod, {"type": "grant", "person": p["id"], "role": "moderator"})  # owners name
    await refused(member, {"type": "mute", "person": m["id"], "minutes": 1})
    await refused(member, {"type": "unban", "person": p["id"]})
    await refused(owner, {"type": "mute", "person": o["id"], "minutes": 1})  # not oneself
    await refused(owner, {"type": "mute", "person": "p000000000000"}, "unknown_person")
    await refused(owner, {"type": "mute", "person": "../../x"}, "unknown_person")
    await refused(owner, {"type": "mute", "person": p["id"], "minutes": 0}, "bad_frame")
    await refused(owner, {"type": "mute", "person": p["id"], "reason": "x" * 201}, "bad_frame")
    await refused(owner, {"type": "grant", "person": p["id"]})  # no role
    await refused(owner, {"type": "revoke", "person": p["id"]})  # has none
    # A moderator does mute a member.
    await mod.send({"type": "mute", "person": p["id"], "minutes": 1, "ref": "ok"})
    assert (await answer(mod, "ok"))["type"] == "moderated"


@pytest.mark.gen_test
async def test_before_joining_there_is_no_one_to_moderate(person):
    client, _, _ = await person("alice@example.com", "Alice", room=None)
    await client.send({"type": "ban", "person": "p000000000000", "ref": "b"})
    assert (await client.expect("error"))["code"] == "not_joined"


@pytest.mark.gen_test(timeout=30)
async def test_a_moderator_deletes_anyones_message_and_it_is_audited_and_caught_up(person, connect, app):
    alice, a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    carol, _c, _ = await person("carol@example.com", "Carol")
    await alice.expect("presence")
    await bob.expect("presence")
    sent = await bob.say("spam spam", "s")
    spam = sent["id"]
    await alice.send({"type": "message", "content": "welcome", "ref": "w"})
    own = (await answer(alice, "w"))["id"]
    # A member deletes only their own.
    await carol.send({"type": "delete", "id": spam, "ref": "d0"})
    assert (await answer(carol, "d0"))["code"] == "not_yours"
    await bob.send({"type": "delete", "id": own, "ref": "d1"})
    assert (await answer(bob, "d1"))["code"] == "not_yours"
    # The owner deletes anyone's, saying why; a catch-up later sees it gone.
    await carol.close()
    await alice.send({"type": "delete", "id": spam, "reason": "ads", "ref": "d2"})
    done = await answer(alice, "d2")
    assert done["type"] == "changed" and done["id"] == spam and done["deleted"] and done["content"] == ""
    kinds: dict = {}
    while len(kinds) < 2:
        frame = await bob.recv()
        if frame["type"] in ("changed", "moderated"):
            kinds[frame["type"]] = frame
    assert kinds["changed"]["deleted"]
    told = kinds["moderated"]
    assert (told["action"], told["message"], told["reason"], told["person"], told["by"]) == (
        "delete",
        spam,
        "ads",
        b,
        a,
    )
    [entry] = [x for x in await app.moderation.store.audit("dev", 10) if x.kind == "delete"]
    assert (entry.actor, entry.target, entry.message, entry.reason) == (a["id"], b["id"], spam, "ads")
    # Carol comes back, catching up by id and by change.
    back, _, _ = await person("carol@example.com", "Carol", room=None)
    await back.send({"type": "join", "room": "dev", "since": own, "rev": 0})
    joined = await back.expect("joined")
    assert [(c["id"], c.get("deleted", False)) for c in joined["changes"]] == [(spam, True)]
    # A moderator does not delete the owner's.
    await alice.send({"type": "grant", "person": b["id"], "role": "moderator", "ref": "g"})
    await answer(alice, "g")
    await bob.send({"type": "delete", "id": own, "ref": "d3"})
    assert (await answer(bob, "d3"))["code"] == "not_allowed"
    await alice.send({"type": "delete", "id": 999, "ref": "d4"})
    assert (await answer(alice, "d4"))["code"] == "not_found"


@pytest.mark.gen_test(timeout=30)
async def test_a_private_room_lets_in_the_invited_alone(person, connect):
    alice, a, joined = await person("alice@example.com", "Alice")
    assert joined["rules"] == {"topic": "", "private": False, "read_only": False}
    bob, _b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    await bob.send({"type": "rules", "topic": "mine now", "ref": "r0"})
    assert (await answer(bob, "r0"))["code"] == "not_allowed"
    await alice.send({"type": "rules", "private": True, "topic": "  the  team's room ", "ref": "r1"})
    done = await answer(alice, "r1")
    rules = {"topic": "the team's room", "private": True, "read_only": False}
    assert (done["type"], done["action"], done["rules"], done["by"]) == ("moderated", "rules", rules, a)
    assert (await bob.expect("moderated"))["rules"] == rules  # present before: stays until leaving
    carol, c, _ = await person("carol@example.com", "Carol", room=None)
    await carol.send({"type": "join", "room": "dev", "ref": "j"})
    refused = await answer(carol, "j")
    assert refused["code"] == "not_invited" and "private" in refused["reason"]
    await alice.send({"type": "invite", "person": c["id"], "ref": "i"})
    assert (await answer(alice, "i"))["action"] == "invite"
    await carol.send({"type": "join", "room": "dev", "ref": "j2"})
    joined = await carol.expect("joined")
    assert joined["rules"] == rules
    await alice.send({"type": "uninvite", "person": c["id"], "ref": "u"})
    assert (await answer(alice, "u"))["action"] == "uninvite"
    closed = await answer(carol, None)
    while closed["type"] != "_close":
        closed = await carol.recv()
    assert (closed["code"], closed["reason"]) == (4403, "This room is private: you are not invited any more")
    # The lobby is everyone's; a topic has a length.
    lobby, _, _ = await person("root@example.com", "Root", room=None)
    await lobby.send({"type": "join", "room": "lobby"})
    await lobby.expect("joined")
    await alice.send({"type": "rules", "topic": "x" * 201, "ref": "t"})
    assert (await answer(alice, "t"))["code"] == "bad_frame"
    await alice.send({"type": "rules", "private": "yes", "ref": "p"})
    assert (await answer(alice, "p"))["code"] == "bad_frame"


@pytest.mark.gen_test(timeout=30)
async def test_in_a_read_only_room_only_moderators_speak(person):
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    await alice.send({"type": "rules", "read_only": True, "topic": "announcements", "ref": "r"})
    assert (await answer(alice, "r"))["rules"]["read_only"] is True
    await bob.send({"type": "message", "content": "can I?", "ref": "m"})
    refused = await answer(bob, "m")
    assert refused["code"] == "read_only" and "only its moderators" in refused["reason"]
    await alice.say("the news", "n")
    assert (await answer(bob, None))["content"] == "the news"
    await alice.send({"type": "grant", "person": b["id"], "role": "moderator", "ref": "g"})
    await answer(alice, "g")
    await bob.send({"type": "message", "content": "now I may", "ref": "m2"})
    assert (await answer(bob, "m2"))["type"] == "sent"
    # Someone who joins later is told at once.
    _, _, joined = await person("carol@example.com", "Carol")
    assert joined["rules"] == {"topic": "announcements", "private": False, "read_only": True}


@pytest.mark.gen_test(timeout=30)
async def test_the_lobby_cannot_be_private(person):
    root, _r, _ = await person(ADMIN, "Root", room="lobby")
    await root.send({"type": "rules", "private": True, "ref": "p"})
    assert (await answer(root, "p"))["code"] == "not_allowed"
    await root.send({"type": "rules", "topic": "welcome", "ref": "t"})
    assert (await answer(root, "t"))["rules"]["topic"] == "welcome"


@pytest.mark.gen_test(timeout=30)
async def test_a_report_reaches_the_moderators_alone_who_see_it_in_context_and_resolve_it(person):
    alice, a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    carol, c, _ = await person("carol@example.com", "Carol")
    await alice.expect("presence")
    await bob.expect("presence")
    await alice.send({"type": "message", "content": "welcome", "ref": "w"})
    await answer(alice, "w")
    await bob.send({"type": "message", "content": "you are all idiots", "ref": "x"})
    rude = (await answer(bob, "x"))["id"]
    await carol.send({"type": "message", "content": "hey!", "ref": "h"})
    await answer(carol, "h")
    await carol.send({"type": "report", "id": rude, "reason": "insults", "ref": "r"})
    reported = await answer(carol, "r")
    assert (reported["type"], reported["message"]) == ("reported", rude)
    seen = await alice.recv()
    while seen["type"] != "report":
        seen = await alice.recv()
    assert (seen["report"], seen["message"], seen["person"], seen["by"], seen["reason"]) == (
        reported["report"], rude, b, c, "insults"
    )  # fmt: skip
    # Nobody else hears of it: Bob's next frame is Alice's next message.
    await alice.say("carry on", "n")
    frame = await bob.recv()
    while frame["type"] == "message" and frame["content"] != "carry on":
        frame = await bob.recv()
    assert frame["type"] == "message" and frame["content"] == "carry on"
    # Only moderators list reports; the list shows each message in context.
    await carol.send({"type": "reports", "ref": "l0"})
    assert (await answer(carol, "l0"))["code"] == "not_allowed"
    await alice.send({"type": "reports", "ref": "l1"})
    listed = await answer(alice, "l1")
    [report] = listed["reports"]
    assert report["report"] == reported["report"] and report["reason"] == "insults"
    assert [m["content"] for m in report["context"]] == ["welcome", "you are all idiots", "hey!", "carry on"]
    await carol.send({"type": "resolve", "report": reported["report"], "ref": "z0"})
    assert (await answer(carol, "z0"))["code"] == "not_allowed"
    await alice.send({"type": "resolve", "report": reported["report"], "reason": "warned", "ref": "z"})
    resolved = await answer(alice, "z")
    assert (resolved["type"], resolved["report"], resolved["resolved"], resolved["by"]) == (
        "report", reported["report"], True, a
    )  # fmt: skip
    await alice.send({"type": "reports", "ref": "l2"})
    assert (await answer(alice, "l2"))["reports"] == []
    await carol.send({"type": "report", "id": 999, "ref": "r9"})
    assert (await answer(carol, "r9"))["code"] == "not_found"
    await carol.send({"type": "report", "ref": "r0"})
    assert (await answer(carol, "r0"))["code"] == "bad_frame"


@pytest.mark.gen_test(timeout=30)
async def test_reporting_a_message_again_while_the_report_is_open_changes_nothing(person):
    alice, _, _ = await person("alice@example.com", "Alice")
    bob, _, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    await bob.send({"type": "message", "content": "buy my stuff", "ref": "x"})
    spam = (await answer(bob, "x"))["id"]
    numbers = set()
    for n in range(10):
        await bob.send({"type": "report", "id": spam, "reason": f"again {n}", "ref": f"r{n}"})
        reported = await answer(bob, f"r{n}")
        assert (reported["type"], reported["message"]) == ("reported", spam)
        numbers.add(reported["report"])
    assert len(numbers) == 1
    await alice.send({"type": "reports", "ref": "l"})
    heard = []
    while (frame := await alice.recv()).get("ref") != "l":
        heard.append(frame)
    assert [(r["report"], r["reason"]) for r in frame["reports"]] == [(*numbers, "again 0")]
    # The moderators heard of it once.
    assert [f["report"] for f in heard if f["type"] == "report"] == [*numbers]
    await alice.send({"type": "resolve", "report": next(iter(numbers)), "ref": "z"})
    assert (await answer(alice, "z"))["resolved"] is True
    # Once resolved, the same message may be reported anew.
    await bob.send({"type": "report", "id": spam, "ref": "r10"})
    again = await answer(bob, "r10")
    assert again["type"] == "reported" and again["report"] not in numbers


@pytest.mark.rate_limit(1.0)
@pytest.mark.gen_test(timeout=30)
async def test_reports_count_against_the_flood_limit_as_messages_do(person, connect):
    # 1 a second in bursts of 2: per connection (a join and one more frame
    # each here) and per person's messages, which reports now count as.
    said = []
    for n in range(6):
        client, _, _ = await person(f"poster{n}@example.com", f"Poster {n}")
        await client.send({"type": "message", "content": f"hello {n}", "ref": "m"})
        sent = await answer(client, "m")
        assert sent["type"] == "sent", sent
        said.append(sent["id"])
    bob, _, _ = await person("bob@example.com", "Bob", room=None)
    tabs = [(await rejoin(connect, bob.secret))[0] for _ in said]
    for n, (tab, message) in enumerate(zip(tabs, said, strict=True)):
        await tab.send({"type": "report", "id": message, "ref": f"r{n}"})
    answers = [await answer(tab, f"r{n}") for n, tab in enumerate(tabs)]
    limited = [f for f in answers if f.get("code") == "rate_limited"]
    # Six at once: at most two, plus one a second they took, get through.
    assert limited and all("messages from" in f["reason"] for f in limited), answers
    assert all(f["type"] == "reported" for f in answers if f not in limited), answers


@pytest.mark.gen_test(timeout=30)
async def test_the_list_of_rooms_never_shows_a_private_room_to_those_it_keeps_out(person):
    alice, _a, _ = await person("alice@example.com", "Alice")  # owns dev
    await alice.send({"type": "message", "content": "team news", "ref": "m"})
    await answer(alice, "m")
    await alice.send({"type": "rules", "private": True, "ref": "p"})
    assert (await answer(alice, "p"))["rules"]["private"] is True
    bob, b, _ = await person("bob@example.com", "Bob", room="lobby")
    await bob.send({"type": "message", "content": "lobby news", "ref": "m"})
    await answer(bob, "m")
    await bob.send({"type": "rooms", "seen": {"dev": 0, "lobby": 0}, "ref": "r1"})
    listed = await answer(bob, "r1")
    # Neither its unread count nor among the active rooms: as of a room never named.
    assert listed["rooms"] == [{"room": "lobby", "unread": 1, "last": 1}]
    assert [r["room"] for r in listed["active"]] == ["lobby"]
    await alice.send({"type": "rooms", "seen": {"dev": 0}, "ref": "r2"})
    mine = await answer(alice, "r2")
    assert mine["rooms"] == [{"room": "dev", "unread": 1, "last": 1}]
    assert [r["room"] for r in mine["active"]] == ["lobby"]  # active rooms are the public ones
    await alice.send({"type": "invite", "person": b["id"], "ref": "i"})
    await answer(alice, "i")
    await bob.send({"type": "rooms", "seen": {"dev": 0}, "ref": "r3"})
    assert (await answer(bob, "r3"))["rooms"] == [{"room": "dev", "unread": 1, "last": 1}]


@pytest.mark.gen_test(timeout=30)
async def test_a_room_turning_private_leaves_the_active_rooms_at_once(person):
    # The active rooms are read at most every 10 s: what was read before the
    # room turned private must not show it meanwhile.
    alice, _a, _ = await person("alice@example.com", "Alice")  # owns dev
    await alice.send({"type": "message", "content": "team news", "ref": "m"})
    await answer(alice, "m")
    bob, _b, _ = await person("bob@example.com", "Bob", room="lobby")
    await bob.send({"type": "rooms", "ref": "r1"})
    assert [r["room"] for r in (await answer(bob, "r1"))["active"]] == ["dev"]
    await alice.send({"type": "rules", "private": True, "ref": "p"})
    assert (await answer(alice, "p"))["rules"]["private"] is True
    await bob.send({"type": "rooms", "ref": "r2"})
    assert (await answer(bob, "r2"))["active"] == []
