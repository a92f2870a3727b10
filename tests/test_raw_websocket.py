"""The raw WebSocket endpoint /chat/websocket, and garbage below the protocol.

The raw endpoint carries the same frames, one per WebSocket text message.
SockJS-level garbage (not a SockJS packet at all) may cost the sender its
connection, which is what sockjs-tornado does, but never the server or
anyone else.
"""

from __future__ import annotations

import json

import pytest

from .helpers import assert_error, say_and_check, still_works
from .sockjs_client import WebSocketClosedError

ALICE, BOB = "alice@example.com", "bob@example.com"


@pytest.mark.gen_test
async def test_a_raw_websocket_client_chats_with_sockjs_clients(clients, health):
    sockjs = await clients()
    await sockjs.join(BOB)
    await sockjs.say("before the raw client came")
    raw = await clients("raw-websocket")
    joined = await raw.join("Alice@EXAMPLE.com")
    assert joined["email"] == "Alice@example.com"
    assert sorted(joined["participants"]) == ["Alice@example.com", BOB]
    assert [m["content"] for m in joined["history"]] == ["before the raw client came"]
    assert await sockjs.expect("presence") == {
        "type": "presence",
        "event": "join",
        "email": "Alice@example.com",
        "count": 2,
    }
    await say_and_check(raw, [sockjs], "hello from raw 🦖", ref="raw-1", sender_email="Alice@example.com")
    await say_and_check(sockjs, [raw], "hello raw", sender_email=BOB)
    await say_and_check(raw, [sockjs], "no ref")
    await raw.send({"type": "message", "content": "  "})
    assert_error(await raw.expect("error"), "empty")
    await raw.close()
    assert await sockjs.expect("presence") == {
        "type": "presence",
        "event": "leave",
        "email": "Alice@example.com",
        "count": 1,
    }
    assert (await health(connections=1))["participants"] == 1


@pytest.mark.gen_test
async def test_each_server_frame_is_one_websocket_message(connect):
    raw = await connect("raw-websocket")
    await raw.join(ALICE)
    other = await connect()
    await other.join(BOB)
    for i in range(5):
        await other.send({"type": "message", "content": f"m{i}"})
    # The client decodes each websocket message as one JSON value: a batch
    # would arrive as a list and fail here.
    frames = [await raw.recv() for _ in range(6)]
    assert all(isinstance(frame, dict) for frame in frames)
    assert [f["type"] for f in frames] == ["presence"] + ["message"] * 5


RAW_BAD_FRAMES = {
    "not-json": "not json",
    "truncated": '{"type": "join", "email": "alice@example.com"',
    "sockjs-batch": json.dumps([json.dumps({"type": "join", "email": ALICE})]),
    "array-of-frames": json.dumps([{"type": "join", "email": ALICE}]),
    "string": json.dumps(json.dumps({"type": "join", "email": ALICE})),
    "number": "42",
    "no-type": '{"email": "alice@example.com"}',
    "unknown-type": '{"type": "hello"}',
    "email-null": '{"type": "join", "email": null}',
    "lone-surrogate": '{"type": "join", "email": "\\ud800@example.com"}',
}


@pytest.mark.parametrize("text", RAW_BAD_FRAMES.values(), ids=RAW_BAD_FRAMES.keys())
@pytest.mark.gen_test
async def test_raw_bad_frame_keeps_the_connection_open(connect, text):
    observer = await connect()
    await observer.join(BOB)
    raw = await connect("raw-websocket")
    await raw.send(text)
    assert_error(await raw.expect("error"), "bad_frame")
    await raw.join(ALICE)
    assert (await observer.expect("presence"))["email"] == ALICE  # nothing before it
    await raw.send('{"type": "message", "content": 7, "ref": "r7"}')
    assert_error(await raw.expect("error"), "bad_frame", ref="r7")
    await still_works(raw, observer, email=ALICE)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00garbage",
        json.dumps({"type": "join", "email": ALICE}).encode(),
    ],
    ids=["not-utf8", "json-as-binary"],
)
@pytest.mark.gen_test
async def test_a_binary_websocket_message_is_a_bad_frame(connect, data):
    """Frames are WebSocket *text* messages; a binary one is refused."""
    observer = await connect()
    await observer.join(BOB)
    raw = await connect("raw-websocket")
    await raw.send_binary(data)
    assert_error(await raw.expect("error"), "bad_frame")
    joined = await raw.join(ALICE)
    assert sorted(joined["participants"]) == [ALICE, BOB]
    assert (await observer.expect("presence"))["email"] == ALICE
    await still_works(raw, observer, email=ALICE)


# -- SockJS-level garbage ------------------------------------------------------

GARBAGE = {
    "not-json": "not json",
    "unterminated-array": '["{\\"type\\": \\"message\\"',
    "bare-object": '{"type": "message", "content": "hi"}',
    "binary-not-utf8": b"\xff\xfe\xfd",
    "binary-array": b'["not a frame"]',
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.gen_test
async def test_sockjs_garbage_over_websocket_harms_nobody_else(connect, clients, health, garbage):
    """The sender of garbage may lose its own connection; nobody else notices
    anything but, at most, its leave."""
    a = await connect("websocket")
    await a.join(ALICE)
    b = await clients()
    await b.join(BOB)
    await a.expect("presence")
    await a.send_raw(garbage)
    try:
        await a.send({"type": "message", "content": "after the garbage", "ref": "g"})
    except WebSocketClosedError:
        pass
    frame = await b.recv()
    if frame["type"] == "presence":  # the server dropped a's connection
        assert frame == {"type": "presence", "event": "leave", "email": ALICE, "count": 1}
        await a.wait_closed()
        assert (await health(connections=1))["participants"] == 1
    else:  # or a's connection carries on
        assert frame["type"] == "message" and frame["content"] == "after the garbage"
        reply = await a.recv()
        if reply["type"] == "error":  # the garbage was a packet, not a frame
            assert_error(reply, "bad_frame")
            reply = await a.recv()
        assert reply["type"] == "sent" and reply["ref"] == "g"
    # The chat goes on for everyone else.
    c = await connect("xhr-polling")
    joined = await c.join("carol@example.com")
    assert BOB in joined["participants"]
    assert (await b.expect("presence"))["email"] == "carol@example.com"
    await say_and_check(b, [c], "all good here", sender_email=BOB)
    assert (await health())["status"] == "ok"


@pytest.mark.parametrize(
    "body",
    ["not json", "", '{"type": "join"', b"\xff\xfe"],
    ids=["not-json", "empty", "truncated", "not-utf8"],
)
@pytest.mark.parametrize("kind", ["xhr-polling", "xhr-streaming"])
@pytest.mark.gen_test
async def test_sockjs_garbage_over_xhr_send_is_refused_and_the_session_lives_on(connect, kind, body):
    a = await connect(kind)
    await a.join(ALICE)
    b = await connect()
    await b.join(BOB)
    await a.expect("presence")
    response = await a.send_body(body)
    assert response.code == 500  # sockjs-tornado's answer to a broken packet
    await still_works(a, b, email=ALICE)
    await still_works(b, a, email=BOB)
