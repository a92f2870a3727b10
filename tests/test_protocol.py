"""Protocol v1 over the wire: join/joined, messages and acks, history, text.

Every test runs once per SockJS transport (websocket, xhr-polling,
xhr-streaming) through the ``clients`` fixture, against a real server.
"""

from __future__ import annotations

import pytest

from .conftest import make_settings
from .helpers import JOINED_KEYS, MESSAGE_KEYS, joined_pair, say_and_check


@pytest.mark.gen_test
async def test_the_example_of_the_contract(clients):
    """PROTOCOL.md's example conversation, frame for frame (but the clock)."""
    a = await clients()
    await a.send({"type": "join", "email": "alice@example.com"})
    assert await a.recv() == {
        "type": "joined",
        "email": "alice@example.com",
        "participants": ["alice@example.com"],
        "history": [],
    }
    b = await clients()
    await b.send({"type": "join", "email": "bob@example.com"})
    assert await b.recv() == {
        "type": "joined",
        "email": "bob@example.com",
        "participants": ["alice@example.com", "bob@example.com"],
        "history": [],
    }
    assert await a.recv() == {"type": "presence", "event": "join", "email": "bob@example.com", "count": 2}
    await b.send({"type": "message", "content": "hello this is bob", "ref": "b-1"})
    sent = await b.recv()
    assert isinstance(sent.get("ts"), float)
    assert sent == {"type": "sent", "ref": "b-1", "id": 1, "ts": sent["ts"]}
    assert await a.recv() == {
        "type": "message",
        "id": 1,
        "sender": "bob@example.com",
        "content": "hello this is bob",
        "ts": sent["ts"],
    }


# -- join / joined -------------------------------------------------------------


@pytest.mark.gen_test
async def test_first_join_gets_joined_with_itself_and_no_history(clients):
    a = await clients()
    joined = await a.join("alice@example.com")
    assert joined == {
        "type": "joined",
        "email": "alice@example.com",
        "participants": ["alice@example.com"],
        "history": [],
    }


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("alice@Example.COM", "alice@example.com"),
        ("Alice.Smith+Tag@EXAMPLE.Com", "Alice.Smith+Tag@example.com"),  # local part kept as typed
        ("  bob@example.com\t\n", "bob@example.com"),
        ("\u00a0carol@example.com\u3000", "carol@example.com"),  # Unicode white space
        ("Zoë@BÜCHER.Example", "Zoë@bücher.example"),
        ("a" * 242 + "@example.com", "a" * 242 + "@example.com"),  # exactly 254 characters
        ("   " + "a" * 242 + "@example.com   ", "a" * 242 + "@example.com"),  # 254 once trimmed
    ],
    ids=[
        "domain-case",
        "local-part-kept",
        "trimmed",
        "unicode-space-trimmed",
        "unicode",
        "254-chars",
        "254-chars-once-trimmed",
    ],
)
@pytest.mark.gen_test
async def test_email_is_trimmed_and_its_domain_lower_cased(clients, raw, normalized):
    a = await clients()
    await a.join("observer@example.com")
    b = await clients()
    joined = await b.join(raw)
    assert joined["email"] == normalized
    assert sorted(joined["participants"]) == sorted(["observer@example.com", normalized])
    presence = await a.expect("presence")
    assert presence["email"] == normalized
    await say_and_check(b, [a], "hi", sender_email=normalized)


@pytest.mark.gen_test
async def test_joined_lists_every_participant_once_joiner_included(clients):
    a1 = await clients()
    assert (await a1.join("alice@example.com"))["participants"] == ["alice@example.com"]
    b = await clients()
    joined = await b.join("bob@example.com")
    assert set(joined) == JOINED_KEYS
    assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com"]
    # Alice's second tab, her domain typed differently: still one Alice.
    a2 = await clients()
    joined = await a2.join("alice@EXAMPLE.com")
    assert joined["email"] == "alice@example.com"
    assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com"]
    c = await clients()
    joined = await c.join("carol@example.com")
    assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com", "carol@example.com"]


@pytest.mark.gen_test
async def test_the_local_part_is_case_sensitive(clients):
    _a, _b = await joined_pair(clients, "alice@example.com", "Alice@example.com")
    c = await clients()
    joined = await c.join("carol@example.com")
    assert sorted(joined["participants"]) == ["Alice@example.com", "alice@example.com", "carol@example.com"]


@pytest.mark.gen_test
async def test_unknown_fields_are_ignored(clients):
    a = await clients()
    await a.send({"type": "join", "email": "alice@example.com", "avatar": "🦖", "v": 2})
    joined = await a.expect("joined")
    assert joined["email"] == "alice@example.com"
    b = await clients()
    await b.join("bob@example.com")
    await a.expect("presence")
    await b.send(
        {"type": "message", "content": "hi", "ref": "r1", "extra": {"nested": [1, None]}, "to": "everyone"}
    )
    ack = await b.expect("sent")
    assert ack["ref"] == "r1"
    message = await a.expect("message")
    assert set(message) == MESSAGE_KEYS and message["content"] == "hi"


# -- message / sent ------------------------------------------------------------


@pytest.mark.gen_test
async def test_message_reaches_every_other_joined_connection_but_not_the_sender(clients):
    a = await clients()
    await a.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    c = await clients()
    await c.join("carol@example.com")
    await a.expect_many("presence", 2)
    await b.expect("presence")
    lurker = await clients()  # connected, never joined
    ack = await say_and_check(a, [b, c], "hello", ref="a-1", sender_email="alice@example.com")
    assert ack["id"] == 1
    # a's next frame is b's message: a never got its own.
    await say_and_check(b, [a, c], "hi alice", sender_email="bob@example.com")
    # The lurker got nothing: its first frame is its joined, with both messages.
    joined = await lurker.join("dave@example.com")
    assert [m["content"] for m in joined["history"]] == ["hello", "hi alice"]


@pytest.mark.gen_test
async def test_the_senders_other_tab_gets_the_message(clients):
    a1 = await clients()
    await a1.join("alice@example.com")
    a2 = await clients()
    await a2.join("alice@example.com")
    b = await clients()
    await b.join("bob@example.com")
    await a1.expect("presence")
    await a2.expect("presence")
    await say_and_check(a1, [a2, b], "from tab 1", ref="t1", sender_email="alice@example.com")
    await say_and_check(a2, [a1, b], "from tab 2", sender_email="alice@example.com")
    # Neither tab got its own message back.
    await say_and_check(b, [a1, a2], "bye", sender_email="bob@example.com")


@pytest.mark.parametrize(
    "ref", ["b-1", "", "r" * 64, "ключ/🔑 #1"], ids=["plain", "empty", "64-chars", "unicode"]
)
@pytest.mark.gen_test
async def test_sent_echoes_the_ref_and_others_never_see_it(clients, ref):
    a, b = await joined_pair(clients)
    ack = await say_and_check(b, [a], "with a ref", ref=ref)
    assert ack["ref"] == ref


@pytest.mark.gen_test
async def test_sent_has_no_ref_when_the_message_had_none(clients):
    a, b = await joined_pair(clients)
    ack = await say_and_check(b, [a], "no ref")
    assert "ref" not in ack


@pytest.mark.gen_test
async def test_ids_strictly_increase_and_ts_is_server_time(clients):
    a, b = await joined_pair(clients)
    acks = []
    for i in range(4):
        acks.append(await say_and_check(a, [b], f"a{i}"))
        acks.append(await say_and_check(b, [a], f"b{i}"))
    ids = [ack["id"] for ack in acks]
    assert ids == list(range(1, len(ids) + 1))


@pytest.mark.parametrize(
    "content, relayed",
    [
        ("  hello  ", "hello"),
        ("\n\thello\r\n", "hello"),
        ("\u3000hello\u00a0", "hello"),
        ("  two  spaces\nand a\tnew line  ", "two  spaces\nand a\tnew line"),
    ],
    ids=["spaces", "newlines-tabs", "unicode-space", "inner-white-space-kept"],
)
@pytest.mark.gen_test
async def test_content_is_trimmed(clients, content, relayed):
    a, b = await joined_pair(clients)
    await b.send({"type": "message", "content": content})
    ack = await b.expect("sent")
    message = await a.expect("message")
    assert message["content"] == relayed
    c = await clients()
    joined = await c.join("carol@example.com")
    assert joined["history"][-1]["content"] == relayed and joined["history"][-1]["id"] == ack["id"]


# -- history -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_history_holds_earlier_messages_oldest_first(clients):
    a, b = await joined_pair(clients)
    seen = []  # what a saw of b's messages, and what b saw of a's
    for i in range(3):
        await b.send({"type": "message", "content": f"b{i}", "ref": f"ref-{i}"})
        await b.expect("sent")
        seen.append(await a.expect("message"))
        await a.send({"type": "message", "content": f"a{i}"})
        await a.expect("sent")
        seen.append(await b.expect("message"))
    c = await clients()
    joined = await c.join("carol@example.com")
    assert joined["history"] == seen  # the very frames the others got, no ref
    assert [m["content"] for m in joined["history"]] == ["b0", "a0", "b1", "a1", "b2", "a2"]


@pytest.mark.gen_test
async def test_history_keeps_messages_of_people_who_left(clients, health):
    a = await clients()
    await a.join("alice@example.com")
    await a.say("anyone here?")
    await a.close()
    await health(participants=0)
    b = await clients()
    joined = await b.join("bob@example.com")
    assert joined["participants"] == ["bob@example.com"]
    assert [(m["sender"], m["content"]) for m in joined["history"]] == [("alice@example.com", "anyone here?")]


@pytest.mark.parametrize("settings", [make_settings(history_limit=3)], ids=["history_limit=3"])
@pytest.mark.gen_test
async def test_history_is_capped_at_the_configured_limit(clients, settings):
    a, b = await joined_pair(clients)
    seen = []
    for i in range(5):
        await a.say(f"m{i}")
        seen.append(await b.expect("message"))
    c = await clients()
    joined = await c.join("carol@example.com")
    assert joined["history"] == seen[-3:]


@pytest.mark.parametrize("settings", [make_settings(rate_limit=0)], ids=["no-flood-limit"])
@pytest.mark.gen_test
async def test_history_is_capped_at_50_by_default(connect, settings):
    a = await connect()
    await a.join("alice@example.com")
    for i in range(55):
        await a.send({"type": "message", "content": f"m{i}"})
    acks = await a.expect_many("sent", 55)
    b = await connect("xhr-polling")
    history = (await b.join("bob@example.com"))["history"]
    assert [m["content"] for m in history] == [f"m{i}" for i in range(5, 55)]
    assert [m["id"] for m in history] == [ack["id"] for ack in acks[5:]]
    assert all(set(m) == MESSAGE_KEYS for m in history)


# -- text ----------------------------------------------------------------------

TEXTS = {
    "emoji": "😀🎉 family 👩‍👩‍👧‍👦 flag 🏳️‍🌈 skin 👍🏽",
    "cjk": "汉字 漢字 ひらがな カタカナ 한국어",
    "rtl": "مرحبا بالعالم — שלום עולם",
    "bidi-controls": "abc \u202edcba\u202c \u200fRTL mark",
    "combining": "e\u0301 a\u0308 n\u0303 Z\u0351\u0325\u0344algo \u0915\u094d\u0937",
    "astral": "𝕏 𝒜 𓀀 \U0010fffd",
    "html": "<img src=x onerror=alert(1)>",
    "script": "<script>alert('x')</script> &amp; &lt; \"quoted\" 'single'",
    "json-like": '{"type":"message","content":"x"} \\u0041 \\n',
    "multi-line": "line 1\nline 2\r\n\ttabbed",
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
@pytest.mark.gen_test
async def test_text_is_relayed_exactly(clients, text):
    a, b = await joined_pair(clients, "Zoë@example.com", "ünïcødé@example.com")
    await say_and_check(a, [b], text, ref=text[:64], sender_email="Zoë@example.com")
    c = await clients()
    history = (await c.join("carol@example.com"))["history"]
    assert history[-1]["content"] == text and history[-1]["sender"] == "Zoë@example.com"
