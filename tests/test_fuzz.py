"""Property-based fuzzing over real connections: arbitrary frames thrown at
a real server get one well-formed reply each, the server logs no error, and
two other people keep chatting throughout.

Hypothesis needs a plain (synchronous) test function, so the server runs in a
thread of its own with its own event loop (:class:`ServerThread`), and the
test drives its clients on a second loop, one example at a time.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import json
import logging
import threading

import pytest
import tornado.httpserver
import tornado.netutil
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chatzilla.app import http_server_options, make_app
from chatzilla.protocol import ProtocolError, Typing, parse_frame, utf8_size

from .conftest import make_settings
from .sockjs_client import RawWebSocketClient, WebSocketClient, XhrPollingClient, XhrStreamingClient

#: Every error code the server may answer a frame with.
ERROR_CODES = {
    "bad_frame",
    "invalid_email",
    "already_joined",
    "not_joined",
    "empty",
    "too_long",
    "rate_limited",
    "invalid_room",
    "unavailable",
    "too_large",
    "too_many_rooms",
}
#: Replies to a frame from a connection that has joined (one that has not may
#: also get ``joined``).
REPLY_TYPES = {"error", "sent", "history"}


class ServerThread:
    """``make_app`` served on a loopback port by a thread with its own loop."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="chatzilla-fuzz-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "the server thread did not start"
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = make_app(self.settings)
        server = tornado.httpserver.HTTPServer(app, **http_server_options(self.settings))
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.stop()
        app.hub.close_all(3001, "Server shutting down")
        await server.close_all_connections()
        await app.shutdown()


class ErrorRecords(logging.Handler):
    """Keeps every record at ERROR or above, from any logger and thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- what gets thrown -------------------------------------------------------------

#: Lone surrogates, which JSON can carry (as \\udXXX) but UTF-8 cannot.
surrogates = st.lists(st.integers(0xD800, 0xDFFF).map(chr), min_size=1, max_size=3).map("".join)
strings = st.one_of(
    st.text(max_size=80),
    st.tuples(st.text(max_size=10), surrogates, st.text(max_size=10)).map("".join),
    st.integers(1990, 2010).map(lambda n: "y" * n),  # around the longest message
    st.integers(65_000, 80_000).map(lambda n: "z" * n),  # around the largest frame
    st.sampled_from(
        [
            "carol@example.com",
            "Dave@Example.COM",
            "lobby",
            "dev",
            "",
            " ",
            "\u0000",
            "\u202e",
            "a" * 65,
            "x@y",
            "@example.com",
        ]
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), strings),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Frames shaped like ours, with anything in the fields (numbers where strings
#: belong, objects, surrogates, huge strings...).
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["join", "message", "history", "typing", "", "MESSAGE"]) | json_values},
    optional={
        name: st.one_of(strings, strings, json_values)
        for name in ("email", "content", "ref", "room", "since", "before", "limit")
    },
)

#: Frames of the right shape with plausible values, to get past the parser
#: into joins, messages, scrollback and typing.
well_formed = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("join"), "email": st.emails() | strings},
        optional={
            "room": st.from_regex(r"[a-z0-9_-]{1,64}", fullmatch=True) | strings,
            "since": st.integers(-2, 10**6),
            "ref": st.text(max_size=70),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("message"), "content": strings}, optional={"ref": st.text(max_size=70)}
    ),
    st.fixed_dictionaries(
        {"type": st.just("history")},
        optional={
            "before": st.integers(-2, 10**6) | json_values,
            "limit": st.integers(-2, 500) | json_values,
        },
    ),
    st.fixed_dictionaries({"type": st.just("typing")}, optional={"ref": st.text(max_size=70)}),
)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


texts = st.one_of(
    well_formed.map(json.dumps),
    well_formed.map(json.dumps),
    frame_like.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),  # mostly not JSON at all
    st.integers(1, 20_000).map(_nested),
    st.integers(1, 20_000).map(lambda n: '{"type": "message", "content": ' + "[" * n),
)
#: Whole SockJS packets, which should be JSON arrays of frames (strings).
packets = st.one_of(
    st.lists(texts, max_size=4).map(json.dumps),
    st.lists(json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
)
#: (connection, payload): a frame to the joined SockJS websocket, the joined
#: raw endpoint or a fresh (not joined) xhr-streaming session; a binary
#: message to the raw endpoint; or a packet to the SockJS websocket.
throws = st.one_of(
    st.tuples(st.sampled_from(["sockjs", "raw", "fresh"]), texts),
    st.tuples(st.just("binary"), st.binary(max_size=200)),
    st.tuples(st.just("packet"), packets),
)


def frames_in(packet: str) -> list:
    """The frames the server finds in a SockJS packet: an array's items;
    anything else is one (bad) frame; an empty message is ignored."""
    if not packet:
        return []
    try:
        value = json.loads(packet)
    except ValueError:
        return [None]
    return value if isinstance(value, list) else [value]


def is_typing(frame: object, max_frame: int) -> bool:
    """A well-formed ``typing`` frame: from a joined connection it gets no
    reply (it is relayed, or dropped by the throttle)."""
    if not isinstance(frame, str) or utf8_size(frame) > max_frame:
        return False
    try:
        return isinstance(parse_frame(frame), Typing)
    except ProtocolError:
        return False


# -- the test ------------------------------------------------------------------------


@dataclasses.dataclass
class Scene:
    base_url: str
    sockjs: WebSocketClient
    raw: RawWebSocketClient
    alice: WebSocketClient
    bob: XhrPollingClient
    #: The server's largest frame, in bytes.
    max_frame: int
    count: itertools.count = dataclasses.field(default_factory=itertools.count)
    #: How often each reply (its error code, or its type) came back.
    tally: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def clients(self):
        return self.sockjs, self.raw, self.alice, self.bob


async def _set_the_scene(base_url: str, max_frame: int) -> Scene:
    # The joined fuzzed connections sit in rooms of their own, so whatever
    # they say reaches only themselves; alice and bob chat in a room that no
    # fuzzed join names.
    joined = []
    for kind, email, room in (
        (WebSocketClient, "fuzz-a@example.com", "fuzz-a"),
        (RawWebSocketClient, "fuzz-b@example.com", "fuzz-b"),
        (WebSocketClient, "alice@example.com", "chat-ab"),
        (XhrPollingClient, "bob@example.com", "chat-ab"),
    ):
        client = await kind(base_url).connect()
        await client.send({"type": "join", "email": email, "room": room})
        await client.expect("joined")
        joined.append(client)
    await joined[2].expect("presence")  # alice hears bob arrive
    return Scene(base_url, *joined, max_frame=max_frame)


def _check_reply(reply: dict, replies: set[str]) -> None:
    assert reply["type"] in replies, reply
    if reply["type"] == "error":
        assert reply["code"] in ERROR_CODES, reply
        assert isinstance(reply["reason"], str) and reply["reason"], reply
        assert set(reply) <= {"type", "code", "reason", "ref", "retry_after"}, reply
        assert "Traceback" not in reply["reason"]


async def _throw(scene: Scene, batch: list[tuple[str, object]]) -> None:
    n = next(scene.count)
    fresh = None
    if any(where == "fresh" for where, _ in batch):
        fresh = await XhrStreamingClient(scene.base_url).connect()
    sent: dict = {scene.sockjs: [], scene.raw: [], fresh: []}
    for where, payload in batch:
        if where == "binary":
            await scene.raw.send_binary(payload)
            sent[scene.raw].append(None)
        elif where == "packet":
            await scene.sockjs.send_packet(payload)
            sent[scene.sockjs].extend(frames_in(payload))
        else:
            client = {"sockjs": scene.sockjs, "raw": scene.raw, "fresh": fresh}[where]
            await client.send(payload)
            sent[client].append(payload)
    # Exactly one reply per frame (none for a typing frame once joined),
    # in order: the sentinel's error comes right after them.
    for client, frames in sent.items():
        if client is None:
            continue
        await client.send({"type": "sentinel", "ref": f"s{n}"})
        replies = REPLY_TYPES | ({"joined"} if client is fresh else set())
        joined = client is not fresh
        for frame in frames:
            if joined and is_typing(frame, scene.max_frame):
                scene.tally["typing"] += 1
                continue
            reply = await client.recv()
            while client is fresh and reply["type"] == "presence":
                reply = await client.recv()  # an earlier fresh one leaving a room it joined
            _check_reply(reply, replies)
            joined = joined or reply["type"] == "joined"
            scene.tally[reply.get("code", reply["type"])] += 1
        sentinel = await client.expect("error")
        assert sentinel["code"] == "bad_frame" and sentinel["ref"] == f"s{n}", sentinel
    if fresh is not None:
        await fresh.close()
    # Meanwhile alice and bob chat on, and hear nothing of it.
    for sender, receiver, email in (
        (scene.alice, scene.bob, "alice@example.com"),
        (scene.bob, scene.alice, "bob@example.com"),
    ):
        await sender.send({"type": "message", "content": f"{email} #{n}", "ref": f"r{n}"})
        ack = await sender.expect("sent")
        message = await receiver.expect("message")
        assert (message["id"], message["sender"], message["content"]) == (ack["id"], email, f"{email} #{n}")


@pytest.fixture
def errors():
    handler = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


def test_arbitrary_frames_get_an_error_and_harm_nobody(tmp_path, errors):
    # Between examples the clients' loop stands still while Hypothesis builds
    # the next one (seconds, for a large one on a busy machine), so bob's
    # next poll waits too: his session must outlive that pause. SQLite: what
    # the fuzzer gets stored must be storable (and read back) there too.
    settings = make_settings(
        storage="sqlite", db=str(tmp_path / "fuzz.db"), rate_limit=0, disconnect_delay=60.0
    )
    with ServerThread(settings) as server:
        base_url = f"http://127.0.0.1:{server.port}"
        loop = asyncio.new_event_loop()
        try:
            scene = loop.run_until_complete(_set_the_scene(base_url, settings.max_frame))

            @hypothesis_settings(
                max_examples=300,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(st.lists(throws, min_size=1, max_size=5))
            def throw(batch):
                loop.run_until_complete(asyncio.wait_for(_throw(scene, batch), 20))
                assert not errors, [r.getMessage() for r in errors]

            throw()
            # The fuzzing got past the parser, into every kind of command.
            assert {
                "bad_frame",
                "too_large",
                "already_joined",
                "not_joined",
                "sent",
                "history",
                "typing",
            } <= set(scene.tally), scene.tally
            for client in scene.clients():
                loop.run_until_complete(client.close())
        finally:
            loop.close()
    assert not errors, [r.getMessage() for r in errors]
