"""Searching a room's messages (docs/protocol.md, "Search"): the Backend
contract on every backend (Redis alone has no full-text search and says
so), the words rule, and the frames over a real server."""

from __future__ import annotations

import asyncio

import pytest

from chatzilla.backends.base import SearchUnavailable
from chatzilla.chat import DELETE, EDIT, Change
from chatzilla.protocol import ProtocolError, matches, search_words

from .test_backend_contract import make_backend  # noqa: F401  (the fixture)
from .test_message_changes import settings  # noqa: F401  (the fixture: every backend)

TEXTS = [
    "Lunch at noon?",
    "Déjà vu: lunch again",
    "the build is green",
    "lunchtime talk on Python",
    "nothing to see",
    "LUNCH: pizza or sushi",
    "a message to delete, about lunch",
    "edited later",
]


def test_a_query_is_its_words_case_folded():
    assert search_words("  Lunch, at NOON!! ") == ["lunch", "at", "noon"]
    for bad in ("", "  ", "?!", "x" * 201, " ".join(["w"] * 11)):
        with pytest.raises(ProtocolError) as refused:
            search_words(bad)
        assert refused.value.code == "invalid_query"


def test_every_word_must_be_there_the_last_as_a_start():
    assert matches(["lunch"], "Lunch at noon?")
    assert matches(["lun"], "Lunch at noon?")  # typed so far
    assert matches(["at", "noo"], "Lunch at noon?")
    assert not matches(["lun", "noon"], "Lunch at noon?")  # only the last is a prefix
    assert not matches(["dinner"], "Lunch at noon?")


def test_search_finds_the_newest_first_and_pages(make_backend, request):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        backend.start(lambda *_: None, lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            ids = []
            for text in TEXTS:
                message, _ = await backend.append("lobby", "a@example.com", text, None, "tab")
                ids.append(message.id)
            await backend.append("other", "a@example.com", "lunch elsewhere", None, "tab")
            await backend.change("lobby", ids[6], Change(DELETE))
            await backend.change("lobby", ids[7], Change(EDIT, "edited: lunch moved"))
            try:
                first = await backend.search("lobby", ["lunch"], None, 3)
            except SearchUnavailable:
                return None
            rest = await backend.search("lobby", ["lunch"], first[-1].id, 10)
            prefix = await backend.search("lobby", ["lun"], None, 10)
            two = await backend.search("lobby", ["lunch", "pi"], None, 10)
            whole = await backend.search("lobby", ["lunch", "talk"], None, 10)
            none = await backend.search("nowhere", ["lunch"], None, 10)
            return ids, first, rest, prefix, two, whole, none
        finally:
            await backend.close()

    result = asyncio.run(scenario())
    if request.node.callspec.params["make_backend"] == "redis":
        assert result is None  # Redis alone has no full-text search: it says so
        return
    assert result is not None
    ids, first, rest, prefix, two, whole, none = result
    assert [m.content for m in first] == ["edited: lunch moved", "LUNCH: pizza or sushi", TEXTS[3]]
    # Older than the last; the deleted one is not found.
    assert [m.id for m in rest] == [ids[1], ids[0]]
    assert [m.id for m in prefix] == [ids[7], ids[5], ids[3], ids[1], ids[0]]
    assert [m.id for m in two] == [ids[5]]
    assert whole == []  # "lunch" is a whole word when another follows: not "lunchtime"
    assert none == []


@pytest.mark.gen_test(timeout=60)
async def test_search_over_the_wire(connect, settings):  # noqa: F811
    alice = await connect()
    await alice.send({"type": "search", "q": "lunch", "ref": "s-0"})
    assert (await alice.expect("error"))["code"] == "not_joined"
    await alice.join("alice@example.com")
    acks = [await alice.say(text) for text in TEXTS]
    await alice.send({"type": "search", "q": "lunch", "limit": 2, "ref": "s-1"})
    answer = await alice.recv()
    if settings.redis_url and not settings.database_url:
        assert (answer["type"], answer["code"], answer["ref"]) == ("error", "search_unavailable", "s-1")
        return
    assert answer["type"] == "search" and answer["ref"] == "s-1" and answer["q"] == "lunch"
    assert [m["id"] for m in answer["messages"]] == [acks[6]["id"], acks[5]["id"]]
    assert answer["more"] is True
    assert answer["messages"][0] == {
        "type": "message",
        "id": acks[6]["id"],
        "sender": "alice@example.com",
        "content": TEXTS[6],
        "ts": acks[6]["ts"],
    }
    await alice.send({"type": "search", "q": "LUNCH", "before": acks[5]["id"], "ref": "s-2"})
    page = await alice.expect("search")
    assert [m["id"] for m in page["messages"]] == [acks[3]["id"], acks[1]["id"], acks[0]["id"]]
    assert (page["more"], page["before"]) == (False, acks[5]["id"])
    for frame in ({"q": "?!"}, {"q": "x" * 201}):
        await alice.send({"type": "search", **frame, "ref": "bad"})
        assert (await alice.expect("error"))["code"] == "invalid_query"
    for frame in ({}, {"q": 3}, {"q": "x", "before": 0}, {"q": "x", "limit": "3"}):
        await alice.send({"type": "search", **frame, "ref": "bad"})
        assert (await alice.expect("error"))["code"] == "bad_frame"
