"""Every error code of protocol v1 the server produces, over every transport.

After each error the offending connection keeps working (it sends a valid
message and gets ``sent``) and the other participants are unaffected: their
next frame is that valid message, so nothing leaked from the refused frame.
``rate_limited`` and the other limits are in test_flood_control.
"""

from __future__ import annotations

import json

import pytest

from .conftest import make_settings
from .helpers import assert_error, joined_pair, say_and_check, still_works

ALICE, BOB = "alice@example.com", "bob@example.com"


def frame_text(frame) -> str:
    return frame if isinstance(frame, str) else json.dumps(frame)


# -- bad_frame -----------------------------------------------------------------

#: Frames refused with bad_frame, whatever the connection's state. A str is
#: sent as the application frame's text verbatim.
BAD_FRAMES = {
    "not-json": "not json",
    "empty-text": "",
    "truncated-json": '{"type": "message", "content": "hi"',
    "single-quotes": "{'type': 'message', 'content': 'hi'}",
    "deeply-nested": "[" * 50_000,
    "array": '[{"type": "message", "content": "hi"}]',
    "number": "5",
    "string": '"message"',
    "null": "null",
    "true": "true",
    "no-type": {"content": "hi"},
    "type-number": {"type": 5, "content": "hi"},
    "type-null": {"type": None, "content": "hi"},
    "type-list": {"type": ["message"], "content": "hi"},
    "type-object": {"type": {"name": "message"}, "content": "hi"},
    "unknown-type": {"type": "shout", "content": "hi"},
    "type-wrong-case": {"type": "Message", "content": "hi"},
    "type-empty": {"type": "", "content": "hi"},
    "content-number": {"type": "message", "content": 5},
    "content-null": {"type": "message", "content": None},
    "content-missing": {"type": "message"},
    "content-list": {"type": "message", "content": ["hi"]},
    "content-object": {"type": "message", "content": {"text": "hi"}},
    "content-bool": {"type": "message", "content": True},
    "content-nan": '{"type": "message", "content": NaN}',
    "content-lone-surrogate": '{"type": "message", "content": "\\ud800"}',
    "content-lone-surrogate-inside": '{"type": "message", "content": "ab\\udc00cd"}',
    "content-lone-surrogate-char": '{"type": "message", "content": "x\ud800"}',
    "email-null": {"type": "join", "email": None},
    "email-missing": {"type": "join"},
    "email-number": {"type": "join", "email": 5},
    "email-list": {"type": "join", "email": [ALICE]},
    "email-lone-surrogate": '{"type": "join", "email": "\\ud800@example.com"}',
    "ref-too-long": {"type": "message", "content": "hi", "ref": "r" * 65},
    "ref-number": {"type": "message", "content": "hi", "ref": 1},
    "ref-list": {"type": "message", "content": "hi", "ref": ["r"]},
    "ref-object": {"type": "message", "content": "hi", "ref": {}},
    "ref-bool": {"type": "message", "content": "hi", "ref": False},
    "ref-lone-surrogate": '{"type": "message", "content": "hi", "ref": "\\udc00"}',
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
@pytest.mark.gen_test
async def test_bad_frame_from_a_joined_connection(clients, frame):
    a, b = await joined_pair(clients)
    await a.send(frame_text(frame))
    assert_error(await a.expect("error"), "bad_frame")
    await still_works(a, b, email=ALICE)
    await still_works(b, a, email=BOB)


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
@pytest.mark.gen_test
async def test_bad_frame_before_joining(clients, frame):
    observer = await clients()
    await observer.join(BOB)
    a = await clients()
    await a.send(frame_text(frame))
    assert_error(await a.expect("error"), "bad_frame")
    # Still a connection that can join: the observer's next frame is its join.
    joined = await a.join(ALICE)
    assert sorted(joined["participants"]) == [ALICE, BOB]
    assert (await observer.expect("presence"))["email"] == ALICE
    await still_works(a, observer, email=ALICE)


#: Refused frames that carry a valid ref: the error echoes it.
BAD_FRAMES_WITH_REF = {
    "unknown-type": {"type": "shout", "ref": "r-1"},
    "content-number": {"type": "message", "content": 5, "ref": "r-2"},
    "content-missing": {"type": "message", "ref": "r-3"},
    "content-lone-surrogate": '{"type": "message", "content": "\\ud800", "ref": "r-4"}',
    "email-null": {"type": "join", "email": None, "ref": "r-5"},
    "64-char-ref": {"type": "message", "content": None, "ref": "r" * 64},
    "unicode-ref": {"type": "message", "content": 1, "ref": "ключ 🔑"},
}


@pytest.mark.parametrize("frame", BAD_FRAMES_WITH_REF.values(), ids=BAD_FRAMES_WITH_REF.keys())
@pytest.mark.gen_test
async def test_bad_frame_echoes_a_valid_ref(clients, frame):
    a, b = await joined_pair(clients)
    await a.send(frame_text(frame))
    ref = json.loads(frame_text(frame))["ref"]
    assert_error(await a.expect("error"), "bad_frame", ref=ref)
    await still_works(a, b)


@pytest.mark.gen_test
async def test_a_refused_frame_does_not_stop_the_ones_after_it(clients):
    """One SockJS packet may carry several frames: each gets its own answer."""
    a, b = await joined_pair(clients)
    await a.send_packet(
        json.dumps(
            [
                json.dumps({"type": "message", "content": "one", "ref": "1"}),
                "not json",
                json.dumps({"type": "message", "content": "   ", "ref": "2"}),
                json.dumps({"type": "message", "content": "two", "ref": "3"}),
            ]
        )
    )
    assert (await a.expect("sent"))["ref"] == "1"
    assert_error(await a.expect("error"), "bad_frame")
    assert_error(await a.expect("error"), "empty", ref="2")
    assert (await a.expect("sent"))["ref"] == "3"
    assert [(await b.expect("message"))["content"] for _ in range(2)] == ["one", "two"]
    await still_works(a, b)


@pytest.mark.parametrize(
    "element",
    [5, None, True, ["x"], {"type": "message", "content": "hi"}],
    ids=["number", "null", "bool", "list", "object"],
)
@pytest.mark.gen_test
async def test_a_sockjs_message_that_is_not_text_is_a_bad_frame(clients, element):
    """SockJS messages are strings; a client that sends other JSON in the
    packet's array gets bad_frame (the object is not taken as a frame)."""
    a, b = await joined_pair(clients)
    await a.send_packet(json.dumps([element]))
    assert_error(await a.expect("error"), "bad_frame")
    await still_works(a, b)


# -- invalid_email -------------------------------------------------------------

INVALID_EMAILS = {
    "empty": "",
    "white-space-only": "  \t ",
    "no-at": "alice.example.com",
    "two-ats": "alice@bob@example.com",
    "empty-local-part": "@example.com",
    "empty-domain": "alice@",
    "domain-without-dot": "alice@localhost",
    "space-in-local-part": "ali ce@example.com",
    "space-in-domain": "alice@exam ple.com",
    "tab-inside": "alice\t@example.com",
    "newline-inside": "alice@example.com\nbcc@example.com",
    "no-break-space-inside": "ali\u00a0ce@example.com",
    "em-space-inside": "alice@example\u2003.com",
    "nul": "ali\x00ce@example.com",
    "trailing-nul": "alice@example.com\x00",
    "bell": "alice\x07@example.com",
    "escape": "\x1b[31malice@example.com",
    "del": "alice\x7f@example.com",
    "c1-control": "alice\x9b@example.com",
    "255-chars": "a" * 243 + "@example.com",
}


@pytest.mark.parametrize("email", INVALID_EMAILS.values(), ids=INVALID_EMAILS.keys())
@pytest.mark.gen_test
async def test_invalid_email(clients, email):
    observer = await clients()
    await observer.join(BOB)
    a = await clients()
    await a.send({"type": "join", "email": email})
    assert_error(await a.expect("error"), "invalid_email")
    # Not joined: a message is refused; then a valid join works.
    await a.send({"type": "message", "content": "hi", "ref": "x"})
    assert_error(await a.expect("error"), "not_joined", ref="x")
    joined = await a.join(ALICE)
    assert sorted(joined["participants"]) == [ALICE, BOB]
    assert (await observer.expect("presence"))["email"] == ALICE  # nothing before it
    await still_works(a, observer, email=ALICE)


# -- already_joined ------------------------------------------------------------


@pytest.mark.parametrize(
    "again",
    [ALICE, "alice@EXAMPLE.com", "carol@example.com", "not an address"],
    ids=["same", "same-other-case", "other", "invalid"],
)
@pytest.mark.gen_test
async def test_already_joined(clients, again):
    a, b = await joined_pair(clients)
    await a.send({"type": "join", "email": again})
    assert_error(await a.expect("error"), "already_joined")
    # a is still alice, and nobody heard of a second join.
    await still_works(a, b, email=ALICE)
    c = await clients()
    joined = await c.join("dave@example.com")
    assert sorted(joined["participants"]) == [ALICE, BOB, "dave@example.com"]


# -- not_joined ----------------------------------------------------------------


@pytest.mark.parametrize("ref", [None, "u-1"], ids=["no-ref", "ref"])
@pytest.mark.gen_test
async def test_not_joined(clients, ref):
    observer = await clients()
    await observer.join(BOB)
    a = await clients()
    frame = {"type": "message", "content": "let me in"}
    if ref is not None:
        frame["ref"] = ref
    await a.send(frame)
    assert_error(await a.expect("error"), "not_joined", ref=ref)
    # The message was not stored, and the observer's next frame is a's join.
    joined = await a.join(ALICE)
    assert joined["history"] == []
    assert (await observer.expect("presence"))["email"] == ALICE
    await still_works(a, observer, email=ALICE)


# -- empty ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["", " ", "\n\t \r\n", "\u3000\u00a0\u2003"],
    ids=["empty", "space", "white-space", "unicode-white-space"],
)
@pytest.mark.parametrize("ref", [None, "e-1"], ids=["no-ref", "ref"])
@pytest.mark.gen_test
async def test_empty(clients, content, ref):
    a, b = await joined_pair(clients)
    frame = {"type": "message", "content": content}
    if ref is not None:
        frame["ref"] = ref
    await a.send(frame)
    assert_error(await a.expect("error"), "empty", ref=ref)
    await still_works(a, b)


# -- too_long ------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "x" * 2001,
        "🦖" * 2001,
        "  " + "x" * 2001 + "  ",
    ],
    ids=["2001-chars", "2001-astral-chars", "2001-chars-once-trimmed"],
)
@pytest.mark.parametrize("ref", [None, "t-1"], ids=["no-ref", "ref"])
@pytest.mark.gen_test
async def test_too_long(clients, content, ref):
    a, b = await joined_pair(clients)
    frame = {"type": "message", "content": content}
    if ref is not None:
        frame["ref"] = ref
    await a.send(frame)
    assert_error(await a.expect("error"), "too_long", ref=ref)
    await still_works(a, b)


@pytest.mark.parametrize(
    "content",
    [
        "x" * 2000,
        "🦖" * 2000,
        "\n  " + "y" * 2000 + "  \n",
    ],
    ids=["2000-chars", "2000-astral-chars", "2000-chars-once-trimmed"],
)
@pytest.mark.gen_test
async def test_2000_characters_is_not_too_long(clients, content):
    a, b = await joined_pair(clients)
    await say_and_check(a, [b], content, ref="long")


@pytest.mark.parametrize("settings", [make_settings(max_content=10)], ids=["max_content=10"])
@pytest.mark.gen_test
async def test_too_long_follows_the_configured_limit(clients, settings):
    a, b = await joined_pair(clients)
    await say_and_check(a, [b], "0123456789")
    await say_and_check(a, [b], "  0123456789  ")
    await a.send({"type": "message", "content": "0123456789A", "ref": "eleven"})
    assert_error(await a.expect("error"), "too_long", ref="eleven")
    await still_works(a, b, content="short")


# -- errors on a join that carries a ref ---------------------------------------
# The error row of the contract: `ref` "when the offending frame carried one";
# the server echoes it when a join is a bad_frame (above), so it must for the
# join's other errors as well.


@pytest.mark.gen_test
async def test_invalid_email_echoes_the_ref_of_the_join(connect):
    a = await connect()
    await a.send({"type": "join", "email": "not an address", "ref": "j-1"})
    assert_error(await a.expect("error"), "invalid_email", ref="j-1")


@pytest.mark.gen_test
async def test_already_joined_echoes_the_ref_of_the_join(connect):
    a = await connect()
    await a.join(ALICE)
    await a.send({"type": "join", "email": ALICE, "ref": "j-2"})
    assert_error(await a.expect("error"), "already_joined", ref="j-2")
