"""Moderation attacked by those it holds (``--auth link``, protocol 2, a
real server on every backend): a muted person rewriting their old messages
instead of sending new ones, an owner acting on themselves."""

from __future__ import annotations

import pytest

from .test_moderation import answer, person, settings  # noqa: F401 (fixtures)


@pytest.mark.gen_test(timeout=30)
async def test_a_muted_person_cannot_rewrite_or_react_but_may_delete_their_messages(person):  # noqa: F811
    alice, _a, _ = await person("alice@example.com", "Alice")
    bob, b, _ = await person("bob@example.com", "Bob")
    await alice.expect("presence")
    first = await bob.say("hello", "m1")
    second = await bob.say("hello again", "m2")
    await alice.send({"type": "mute", "person": b["id"], "minutes": 10, "reason": "spam", "ref": "m"})
    assert (await answer(alice, "m"))["type"] == "moderated"
    # An edit is a message by other means: refused as one, nothing changed.
    await bob.send({"type": "edit", "id": first["id"], "content": "BUY NOW", "ref": "e"})
    refused = await answer(bob, "e")
    assert refused["type"] == "error" and refused["code"] == "muted", refused
    assert 570 < refused["retry_after"] <= 600
    # Nor a reaction: it too is shown to the whole room.
    await bob.send({"type": "react", "id": first["id"], "emoji": "💰", "ref": "r"})
    refused = await answer(bob, "r")
    assert refused["type"] == "error" and refused["code"] == "muted", refused
    # Taking one's own message back is no harm to anyone.
    await bob.send({"type": "delete", "id": second["id"], "ref": "d"})
    assert (await answer(bob, "d"))["deleted"] is True
    assert (await alice.expect("changed"))["id"] == second["id"]  # the delete, and no edit before it
    await alice.send({"type": "history", "limit": 10})
    history = await alice.expect("history")
    assert [(m["content"], "edited" in m) for m in history["messages"]] == [("hello", False), ("", False)]


@pytest.mark.gen_test(timeout=30)
async def test_an_owner_cannot_give_themselves_another_role(person):  # noqa: F811
    olga, o, joined = await person("olga@example.com", "Olga")
    assert joined["roles"] == {o["id"]: "owner"}
    await olga.send({"type": "grant", "person": o["id"], "role": "moderator", "ref": "g"})
    refused = await answer(olga, "g")
    assert refused["type"] == "error" and refused["code"] == "not_allowed", refused
    # Still the owner: the next one in does not take the room over.
    _pat, _p, joined = await person("pat@example.com", "Pat")
    assert joined["roles"] == {o["id"]: "owner"}
