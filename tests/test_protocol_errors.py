"""Every error code of protocol v1 the server produces, over real connections.

Every refused input of tests/refused.py is sent on one transport (websocket):
the frames are parsed above the transport, and test_protocol_parsing checks
each against its rule. test_every_refusal_on_every_transport sends a case of
each error code over every transport, as does the test of a packet whose
frames are answered one by one.

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
from .refused import (
    BAD_FRAMES,
    BAD_FRAMES_WITH_REF,
    BLANK_CONTENTS,
    INVALID_EMAILS,
    LONGEST_CONTENTS,
    NOT_TEXT,
    TOO_LONG_CONTENTS,
    frame_text,
)
from .sockjs_client import TRANSPORTS

ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.fixture
def transport() -> str:
    # The matrix runs on one transport: parsing happens above the transport
    # (every case is checked against its rule in test_protocol_parsing), and
    # test_every_refusal_on_every_transport takes a case of each error over
    # each of them.
    return "websocket"


# Flood control off: that many frames at once would be too fast.
@pytest.mark.parametrize("settings", [make_settings(rate_limit=0)], ids=["rate_limit=0"])
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.gen_test
async def test_every_refusal_on_every_transport(clients, settings):
    """One case of each error code, and the inputs whose bytes the transports
    carry differently (a lone surrogate, deep nesting, astral characters, a
    packet element that is not text), over every transport."""
    a, b = await joined_pair(clients)
    for name in ["not-json", "deeply-nested", "content-lone-surrogate", "content-lone-surrogate-char"]:
        await a.send(frame_text(BAD_FRAMES[name]))
        assert_error(await a.expect("error"), "bad_frame")
    await a.send(frame_text(BAD_FRAMES_WITH_REF["unicode-ref"]))
    assert_error(await a.expect("error"), "bad_frame", ref="ключ 🔑")
    await a.send_packet(json.dumps([NOT_TEXT["object"]]))
    assert_error(await a.expect("error"), "bad_frame")
    await a.send({"type": "join", "email": ALICE, "ref": "j"})
    assert_error(await a.expect("error"), "already_joined", ref="j")
    await a.send({"type": "message", "content": BLANK_CONTENTS["unicode-white-space"], "ref": "e"})
    assert_error(await a.expect("error"), "empty", ref="e")
    await a.send({"type": "message", "content": TOO_LONG_CONTENTS["2001-astral-chars"], "ref": "t"})
    assert_error(await a.expect("error"), "too_long", ref="t")
    await say_and_check(a, [b], LONGEST_CONTENTS["2000-astral-chars"], ref="long")
    await still_works(a, b, email=ALICE)

    c = await clients()
    await c.send({"type": "message", "content": "let me in", "ref": "n"})
    assert_error(await c.expect("error"), "not_joined", ref="n")
    await c.send({"type": "join", "email": INVALID_EMAILS["newline-inside"]})
    assert_error(await c.expect("error"), "invalid_email")
    joined = await c.join("carol@example.com")
    assert sorted(joined["participants"]) == [ALICE, BOB, "carol@example.com"]
    assert joined["history"][-1]["content"] == "still here"
    assert (await b.expect("presence"))["email"] == "carol@example.com"  # nothing before it
    await still_works(c, b, email="carol@example.com")


# -- bad_frame -----------------------------------------------------------------


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


@pytest.mark.parametrize("frame", BAD_FRAMES_WITH_REF.values(), ids=BAD_FRAMES_WITH_REF.keys())
@pytest.mark.gen_test
async def test_bad_frame_echoes_a_valid_ref(clients, frame):
    a, b = await joined_pair(clients)
    await a.send(frame_text(frame))
    ref = json.loads(frame_text(frame))["ref"]
    assert_error(await a.expect("error"), "bad_frame", ref=ref)
    await still_works(a, b)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
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


@pytest.mark.parametrize("element", NOT_TEXT.values(), ids=NOT_TEXT.keys())
@pytest.mark.gen_test
async def test_a_sockjs_message_that_is_not_text_is_a_bad_frame(clients, element):
    """SockJS messages are strings; a client that sends other JSON in the
    packet's array gets bad_frame (the object is not taken as a frame)."""
    a, b = await joined_pair(clients)
    await a.send_packet(json.dumps([element]))
    assert_error(await a.expect("error"), "bad_frame")
    await still_works(a, b)


# -- invalid_email -------------------------------------------------------------


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


@pytest.mark.parametrize("content", BLANK_CONTENTS.values(), ids=BLANK_CONTENTS.keys())
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


@pytest.mark.parametrize("content", TOO_LONG_CONTENTS.values(), ids=TOO_LONG_CONTENTS.keys())
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


@pytest.mark.parametrize("content", LONGEST_CONTENTS.values(), ids=LONGEST_CONTENTS.keys())
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
