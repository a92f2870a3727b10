"""Private rooms over a real server (``--auth link``, protocol 2) on every
backend (memory, SQLite, Redis, Postgres, Postgres with Redis): invitation
links (made, followed, listed, revoked, expired), invitations by address,
a room turning private closing out the uninvited present, and the cap on
one person's open reports."""

from __future__ import annotations

import time

import pytest

from chatzilla import moderation
from chatzilla.moderating import PRIVATE_NOW
from chatzilla.moderation import Action

from . import test_moderation
from .conftest import make_settings
from .test_moderation import ADMIN, answer, redis_settings

#: Signed-in people (test_moderation's fixture).
person = test_moderation.person


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "postgres+redis"])
def settings(request, tmp_path):
    common = {"auth": "link", "admins": (ADMIN,), "rate_limit": 0.0}
    if request.param.startswith("postgres"):
        common["database_url"] = request.getfixturevalue("database_url")
    if "redis" in request.param:
        return redis_settings(request, **common)
    if request.param == "postgres":
        return make_settings(**common)
    return make_settings(storage=request.param, db=str(tmp_path / "chatzilla.db"), **common)


async def private_room(person):
    """Alice's room "dev", made private; her connection and public self."""
    alice, a, _ = await person("alice@example.com", "Alice")
    await alice.send({"type": "rules", "private": True, "ref": "p"})
    assert (await answer(alice, "p"))["rules"]["private"] is True
    return alice, a


async def join(client, room: str = "dev", **fields) -> dict:
    """The answer to ``client``'s join of ``room`` (``joined`` or an error)."""
    await client.send({"type": "join", "room": room, "ref": "j", **fields})
    while True:
        frame = await client.recv()
        if frame["type"] in ("joined", "error"):
            return frame


@pytest.mark.gen_test(timeout=30)
async def test_an_invitation_link_lets_whoever_follows_it_into_a_private_room(person, app):
    # Olga's room, private too. (Made first: those joining a room while it
    # turns private may be closed out rather than refused.)
    olga, _o, _ = await person("olga@example.com", "Olga", room="olgas")
    await olga.send({"type": "rules", "private": True, "ref": "p"})
    await answer(olga, "p")
    alice, a = await private_room(person)
    before = time.time()
    await alice.send({"type": "invite_link", "hours": 2, "ref": "l"})
    made = await answer(alice, "l")
    assert made["type"] == "invite_link" and made["by"] == a
    assert before + 7200 <= made["expires"] <= time.time() + 7200
    secret, link = made["secret"], made["id"]
    assert len(secret) >= 24 and link == moderation.link_id(secret)

    bob, b, _ = await person("bob@example.com", "Bob", room=None)
    refused = await join(bob)
    assert refused["code"] == "not_invited"
    refused = await join(bob, invite="not-a-link")
    assert refused["code"] == "invalid_invite" and "ask for a new one" in refused["reason"]
    joined = await join(bob, invite=secret)
    assert joined["type"] == "joined" and joined["rules"]["private"] is True
    told = await alice.expect("moderated")
    assert (told["action"], told["person"], told["by"], told["reason"]) == ("invite", b, a, "invitation link")
    assert told["link"] == link
    await alice.expect("presence")
    # Invited for good: back without the link.
    await bob.send({"type": "leave"})
    assert (await join(bob))["type"] == "joined"
    # A member makes no links; the lobby needs none; hours have bounds.
    await bob.send({"type": "invite_link", "ref": "b"})
    assert (await answer(bob, "b"))["code"] == "not_allowed"
    await alice.send({"type": "invite_link", "hours": 721, "ref": "h"})
    assert (await answer(alice, "h"))["code"] == "bad_frame"

    # Listed to moderators (without the secret), revoked, then refused.
    await alice.send({"type": "invite_link", "ref": "l2"})
    second = await answer(alice, "l2")
    assert second["expires"] == pytest.approx(second["ts"] + 7 * 24 * 3600)
    await alice.send({"type": "invite_links", "ref": "ls"})
    listed = await answer(alice, "ls")
    assert [x["id"] for x in listed["links"]] == [link, second["id"]]
    assert "secret" not in listed["links"][0] and listed["links"][0]["by"] == a
    await bob.send({"type": "invite_links", "ref": "bl"})
    assert (await answer(bob, "bl"))["code"] == "not_allowed"
    await alice.send({"type": "revoke_link", "id": link, "ref": "r"})
    assert await answer(alice, "r") == {"type": "link_revoked", "id": link, "ref": "r"}
    await alice.send({"type": "revoke_link", "id": link, "ref": "r2"})
    assert (await answer(alice, "r2"))["code"] == "not_found"
    carol, _c, _ = await person("carol@example.com", "Carol", room=None)
    refused = await join(carol, invite=secret)
    assert refused["code"] == "invalid_invite" and "revoked" in refused["reason"]
    # A link is for its room alone.
    assert (await join(carol, "olgas", invite=second["secret"]))["code"] == "invalid_invite"
    assert (await join(carol, invite=second["secret"]))["type"] == "joined"

    # The audit log says who made and revoked which link, never its secret.
    entries = [x for x in await app.moderation.store.audit("dev", 50) if x.kind in ("link", "unlink")]
    assert [(x.kind, x.link, x.actor) for x in entries] == [
        ("link", link, a["id"]),
        ("link", second["id"], a["id"]),
        ("unlink", link, a["id"]),
    ]
    assert not any(secret in x.to_json() for x in await app.moderation.store.audit(None, 100))


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_link_is_refused_and_a_public_room_needs_none(person, app):
    alice, a = await private_room(person)
    secret, link = moderation.new_link()
    now = time.time()
    # Made two hours ago for one hour (as a moderator's frame would keep it).
    await app.moderation.store.apply(
        Action("link", "dev", "", a["id"], now - 7200, until=now - 3600, actor_public=a, link=link)
    )
    bob, _b, _ = await person("bob@example.com", "Bob", room=None)
    refused = await join(bob, invite=secret)
    assert refused["code"] == "invalid_invite" and "expired" in refused["reason"]
    await alice.send({"type": "invite_links", "ref": "ls"})
    assert (await answer(alice, "ls"))["links"] == []
    # Public again: a stale link in the join is not looked at.
    await alice.send({"type": "rules", "private": False, "ref": "o"})
    await answer(alice, "o")
    assert (await join(bob, invite="whatever"))["type"] == "joined"


@pytest.mark.gen_test(timeout=30)
async def test_moderators_invite_by_address(person):
    alice, a = await private_room(person)
    bob, b, _ = await person("bob@example.com", "Bob", room=None)
    await alice.send({"type": "invite", "email": " bob@EXAMPLE.com ", "ref": "i"})
    done = await answer(alice, "i")
    assert (done["type"], done["action"], done["person"], done["by"]) == ("moderated", "invite", b, a)
    assert (await join(bob))["type"] == "joined"
    await alice.expect("presence")
    for email, code in (("nobody@example.com", "unknown_person"), ("not an address", "invalid_email")):
        await alice.send({"type": "invite", "email": email, "ref": "x"})
        refused = await answer(alice, "x")
        assert refused["code"] == code
    assert "invitation link" in refused["reason"] or code == "invalid_email"
    await bob.send({"type": "invite", "email": "carol@example.com", "ref": "y"})
    assert (await answer(bob, "y"))["code"] == "not_allowed"
    await alice.send({"type": "uninvite", "email": "bob@example.com", "ref": "u"})
    assert (await answer(alice, "u"))["action"] == "uninvite"
    closed = await bob.recv()
    while closed["type"] != "_close":
        closed = await bob.recv()
    assert closed["code"] == 4403


@pytest.mark.gen_test(timeout=30)
async def test_a_room_turning_private_closes_out_those_present_who_are_not_invited(person, connect):
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    carol, c, _ = await person("carol@example.com", "Carol")
    dave, _d, _ = await person("dave@example.com", "Dave")
    await alice.send({"type": "grant", "person": b["id"], "role": "moderator", "ref": "g"})
    await answer(alice, "g")
    await alice.send({"type": "invite", "person": c["id"], "ref": "i"})
    await answer(alice, "i")
    await alice.send({"type": "rules", "private": True, "ref": "p"})
    await answer(alice, "p")
    closed = await dave.recv()
    while closed["type"] != "_close":
        closed = await dave.recv()
    assert (closed["code"], closed["reason"]) == (4403, PRIVATE_NOW)
    # The others stay and go on talking: Dave's leave reaches them.
    for other in (bob, carol):
        left = await other.recv()
        while left.get("event") != "leave":
            left = await other.recv()
    await carol.send({"type": "message", "content": "still here", "ref": "m"})
    assert (await answer(carol, "m"))["type"] == "sent"
    assert (await bob.expect("message"))["content"] == "still here"
    # Dave comes back (a page reconnects after the close): refused, saying why.
    again = await connect("websocket", headers={"Cookie": f"chatzilla_session={dave.secret}"})
    refused = await join(again)
    assert refused["code"] == "not_invited"


@pytest.mark.gen_test(timeout=30)
async def test_one_person_has_at_most_so_many_open_reports_in_a_room(person):
    alice, _a, _ = await person("alice@example.com", "Alice")
    ids = []
    for n in range(moderation.MAX_OPEN_REPORTS + 1):
        await alice.send({"type": "message", "content": f"m{n}", "ref": f"m{n}"})
        ids.append((await answer(alice, f"m{n}"))["id"])
    bob, _b, _ = await person("bob@example.com", "Bob")
    numbers = []
    for n, message in enumerate(ids[:-1]):
        await bob.send({"type": "report", "id": message, "ref": f"r{n}"})
        numbers.append((await answer(bob, f"r{n}"))["report"])
    await bob.send({"type": "report", "id": ids[-1], "ref": "over"})
    refused = await answer(bob, "over")
    assert refused["code"] == "too_many_reports" and str(moderation.MAX_OPEN_REPORTS) in refused["reason"]
    # An open one again is answered as before; once one is resolved, one more.
    await bob.send({"type": "report", "id": ids[0], "ref": "again"})
    assert (await answer(bob, "again"))["report"] == numbers[0]
    await alice.send({"type": "resolve", "report": numbers[3], "ref": "res"})
    await answer(alice, "res")
    await bob.send({"type": "report", "id": ids[-1], "ref": "last"})
    assert (await answer(bob, "last"))["type"] == "reported"
    # Someone else's reports are theirs to count.
    carol, _c, _ = await person("carol@example.com", "Carol")
    await carol.send({"type": "report", "id": ids[-1], "ref": "c"})
    assert (await answer(carol, "c"))["type"] == "reported"
