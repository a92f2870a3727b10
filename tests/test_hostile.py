"""Hostile clients, round two (issue 12): what an attacker still broke.

Each test here failed on the main branch before its fix.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.retention import Retention
from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.chat import EDIT, Change
from chatzilla.hub import MAX_HELD, Hub
from chatzilla.outbox import Outbox
from chatzilla.privacy import email_hash
from chatzilla.protocol import MAX_INTEGER, ProtocolError, parse_frame, peek
from chatzilla.proxies import DEFAULT_TRUSTED, TrustedProxies, address_key, parse_networks
from chatzilla.security import host_allowed, parse_hosts

from .conftest import make_settings
from .helpers import assert_error, eventually
from .sockjs_client import Refused
from .test_hub import Recorder

ALICE, BOB = "alice@example.com", "bob@example.com"

# -- item 1: integers out of range, half-finished joins ---------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join", "email": ALICE, "since": 2**64},
        {"type": "join", "email": ALICE, "since": MAX_INTEGER + 1},
        {"type": "history", "before": 2**64},
        {"type": "history", "limit": 10**30},
    ],
)
def test_integers_past_the_largest_id_are_bad_frames(frame):
    with pytest.raises(ProtocolError) as info:
        parse_frame(json.dumps(frame))
    assert info.value.code == "bad_frame"


def test_the_largest_integer_is_accepted():
    assert (
        parse_frame(json.dumps({"type": "join", "email": ALICE, "since": MAX_INTEGER})).since == MAX_INTEGER
    )


@pytest.mark.gen_test
async def test_a_join_since_2_64_is_a_bad_frame_and_leaves_nobody_behind(connect, health, caplog):
    a = await connect()
    await a.send({"type": "join", "email": ALICE, "since": 2**64, "ref": "j1"})
    assert_error(await a.expect("error"), "bad_frame", "j1")
    await health(connections=1, participants=0)
    joined = await a.join(ALICE)  # the connection was never half-joined
    assert joined["participants"] == [ALICE]
    await a.send({"type": "history", "before": 2**64})
    assert_error(await a.expect("error"), "bad_frame")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_join_whose_history_read_raises_anything_is_rolled_back(tmp_path):
    """OverflowError is not a StorageError: the member must go all the same."""

    async def scenario():
        backend = SQLiteBackend(str(tmp_path / "chat.db"))
        hub = Hub(backend, history_limit=50, max_content=2000)
        try:
            mallory, bob = Recorder("mallory"), Recorder("bob")
            hub.open(mallory)
            hub.open(bob)
            with pytest.raises(OverflowError):
                await hub.join(mallory, "mallory@example.com", None, since=2**64)
            assert hub.stats() == {"connections": 2, "participants": 0}
            await hub.join(bob, BOB)
            assert json.loads(bob.texts[0])["participants"] == [BOB]
            await hub.say(bob, "hello", "b1")
            await asyncio.sleep(0.1)
            assert mallory.texts == []  # holds nothing, hears nothing
        finally:
            await backend.close()

    asyncio.run(scenario())


class StalledHistory(MemoryBackend):
    """The memory backend, whose history reads wait until ``release`` is set:
    a database that stalls while the room goes on talking."""

    def __init__(self) -> None:
        super().__init__(Retention(messages=10))
        self.release = asyncio.Event()
        self.stalled = 0

    async def page(self, room, after, before, limit):
        if not self.release.is_set():
            self.stalled += 1
            await self.release.wait()
        return await super().page(room, after, before, limit)


def test_frames_held_for_a_stalled_join_are_bounded():
    async def scenario():
        backend = StalledHistory()
        hub = Hub(backend, history_limit=50, max_content=2000)
        alice, mallory = Recorder("alice"), Recorder("mallory")
        hub.open(alice)
        hub.open(mallory)
        backend.release.set()
        await hub.join(alice, ALICE)
        backend.release.clear()
        join = asyncio.ensure_future(hub.join(mallory, "mallory@example.com"))
        while not backend.stalled:
            await asyncio.sleep(0)
        for i in range(MAX_HELD + 1):
            await hub.say(alice, f"message {i}", f"a{i}")
        assert mallory.closes == [(4008, "Too slow: the client does not read what is sent")]
        assert hub.stats()["participants"] == 1
        backend.release.set()
        await join
        assert mallory.texts == []  # nothing was held, nothing is sent after all

    asyncio.run(scenario())


# -- item 3: frames past the rate limit are refused unread ---------------------


def test_peek_finds_type_and_ref_at_either_end_of_a_large_frame():
    padding = "x" * 65000
    assert peek(json.dumps({"type": "message", "content": padding, "ref": "r1"})) == ("message", "r1")
    assert peek(json.dumps({"ref": "r2", "content": padding, "type": "message"})) == ("message", "r2")
    # In the middle of a large frame, escaped, or inside the content: not looked for.
    assert peek(json.dumps({"type": "message", "a": padding, "ref": "r3", "b": padding})) == ("message", None)
    assert peek(json.dumps({"type": "message", "content": 'x", "ref": "evil'})) == ("message", None)
    assert peek('{"type": "message", "ref": "a\\"b"}') == ("message", None)


async def exhaust(client, n: int = 12) -> None:
    """Spend ``client``'s burst of frames (10) and read the replies (all
    errors: it has not joined); the last one says it is too fast."""
    for i in range(n):
        await client.send({"type": "typing", "ref": f"t{i}"})
    replies = [await client.expect("error") for _ in range(n)]
    assert replies[-1]["code"] == "rate_limited", replies


@pytest.mark.gen_test
async def test_a_frame_past_the_limit_is_refused_unread_with_its_ref(connect):
    a = await connect()
    await exhaust(a)
    # Broken JSON: parsed, it would be a bad_frame that lost its ref.
    await a.send('{"type": "message", "content": "hi" oops, "ref": "r9"}')
    error = await a.expect("error")
    assert error["code"] == "rate_limited" and error["ref"] == "r9", error


@pytest.mark.gen_test
async def test_a_connection_that_ignores_rate_limited_is_closed(connect):
    a = await connect()
    await a.join(ALICE)
    b = await connect()
    await b.join(BOB)
    await a.expect("presence")
    frame = json.dumps({"type": "message", "content": "flood", "ref": "f"})
    for _ in range(20):
        if b.closed:
            break
        with contextlib.suppress(WebSocketClosedError):
            await b.send_packet(json.dumps([frame] * 15))
    codes = collections.Counter()
    while True:
        reply = await b.recv()
        if reply["type"] == "_close":
            break
        codes[reply.get("code", reply["type"])] += 1
    assert (reply["code"], reply["reason"]) == (4029, "Too many frames: rate_limited was ignored")
    assert codes["rate_limited"] >= 100, codes
    # The others go on.
    await a.send({"type": "message", "content": "still here", "ref": "a1"})
    while (reply := await a.recv())["type"] != "sent":
        assert reply["type"] in ("message", "presence"), reply


# -- item 5: JSONP callbacks ---------------------------------------------------


@pytest.mark.parametrize(
    "callback", ["alert(document.domain)//", "a;b", "x%20y", "%D0%B9%D1%86", "a-b", "a%0Ab", "c" * 300]
)
@pytest.mark.gen_test
async def test_a_jsonp_callback_that_is_not_a_name_is_refused(fetch, callback):
    response = await fetch(f"/chat/000/cb{len(callback)}/jsonp?c={callback}")
    assert response.code == 500
    assert response.body == b'invalid "callback" parameter'
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.gen_test
async def test_a_jsonp_response_starts_with_a_comment_then_the_callback(fetch):
    response = await fetch("/chat/000/jp1/jsonp?c=_jp.a1b2_c3")
    assert response.code == 200
    assert response.body == b'/**/_jp.a1b2_c3("o");\r\n'


# -- item 9: e-mail addresses in logs --------------------------------------------


# A grace period long enough that the second join is surely within it.
@pytest.mark.parametrize("settings", [make_settings(presence_grace=30.0)])
@pytest.mark.gen_test
async def test_info_logs_name_people_by_a_hash_and_debug_by_address(connect, caplog):
    with caplog.at_level(logging.INFO, logger="chatzilla"):
        a = await connect()
        await a.join(ALICE)
        await a.close()
        b = await connect()
        await b.join(ALICE)  # back within the grace period
        await b.send({"type": "leave"})
        await eventually(lambda: f"leave {email_hash(ALICE)}" in caplog.text, what="the leave logged")
    assert f"join {email_hash(ALICE)}" in caplog.text
    assert f"back {email_hash(ALICE)}" in caplog.text
    assert f"leave {email_hash(ALICE)}" in caplog.text
    assert ALICE not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="chatzilla"):
        c = await connect()
        await c.join(BOB)
        await eventually(lambda: f"join {email_hash(BOB)}" in caplog.text, what="the join logged")
    assert f"join {email_hash(BOB)} <{BOB}>" in caplog.text


# -- item 7: DNS rebinding and the Origin's scheme -------------------------------


def test_allowed_hosts_rule():
    assert parse_hosts(" LocalHost:8000, 127.0.0.1 ,[::1]:80, .example.com") == (
        "localhost",
        "127.0.0.1",
        "[::1]",
        ".example.com",
    )
    with pytest.raises(ValueError, match="evil"):
        parse_hosts("ok.example, evil/x")
    assert host_allowed("evil.example", ())  # empty: any host
    hosts = parse_hosts("localhost,[::1],.example.com")
    for host in ("localhost:8000", "LOCALHOST", "[::1]:8000", "example.com", "chat.example.com:443"):
        assert host_allowed(host, hosts), host
    for host in ("evil.example", "localhost.evil.example", "badexample.com", "[::2]", "", None):
        assert not host_allowed(host, hosts), host


@pytest.mark.parametrize("settings", [make_settings(allowed_hosts=("127.0.0.1", "localhost"))])
@pytest.mark.parametrize("path", ["/", "/r/dev", "/chat/info", "/static/js/main.js", "/nowhere"])
@pytest.mark.gen_test
async def test_a_host_that_is_not_allowed_gets_400(fetch, path):
    """A page of evil.example whose DNS name was rebound to our address."""
    response = await fetch(path, headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert response.code == 400
    assert b"evil" not in response.body
    assert (await fetch(path, headers={"Host": "localhost"})).code in (200, 404)


@pytest.mark.parametrize("settings", [make_settings(allowed_hosts=("127.0.0.1",))])
@pytest.mark.gen_test
async def test_a_rebound_host_cannot_open_a_websocket_but_healthz_answers(connect, base_url, fetch):
    headers = {"Host": "evil.example", "Origin": "http://evil.example"}
    with pytest.raises((Refused, HTTPClientError)) as refused:
        await connect(origin="http://evil.example", headers=headers)
    status = refused.value.status if isinstance(refused.value, Refused) else refused.value.code
    assert status == 400
    assert (await fetch("/healthz", headers={"Host": "10.0.0.5"})).code == 200
    a = await connect(origin=base_url)
    await a.join(ALICE)


@pytest.mark.gen_test
async def test_an_origin_of_the_other_scheme_is_refused(connect, base_url):
    """https://host is another origin than http://host (the page's)."""
    other = base_url.replace("http://", "https://")
    with pytest.raises((Refused, HTTPClientError)) as refused:
        await connect(origin=other)
    status = refused.value.status if isinstance(refused.value, Refused) else refused.value.code
    assert status == 403
    # Behind a trusted TLS proxy the page is https, and so is the request.
    a = await connect(origin=other, headers={"X-Forwarded-Proto": "https"})
    await a.join(ALICE)


# -- item 8: LAN and VPN clients behind a trusted proxy ------------------------


def test_a_lan_client_behind_the_proxy_names_itself_unless_only_the_proxy_is_trusted():
    # nginx on this machine appends the LAN client's own address to what it wrote.
    header = "203.0.113.66, 192.168.1.5"
    assert TrustedProxies(DEFAULT_TRUSTED).client_address("127.0.0.1", header) == "203.0.113.66"
    assert TrustedProxies(parse_networks("127.0.0.1")).client_address("127.0.0.1", header) == "192.168.1.5"


@pytest.mark.parametrize(
    "settings", [make_settings(trusted_proxies=parse_networks("127.0.0.1"), max_connections_per_address=1)]
)
@pytest.mark.gen_test
async def test_lan_clients_that_name_themselves_are_counted_by_their_own_address(connect, health):
    await connect(headers={"X-Forwarded-For": "203.0.113.1, 192.168.1.5"})
    second = await connect(headers={"X-Forwarded-For": "203.0.113.2, 192.168.1.5"})
    frame = await second.recv()
    assert (frame["type"], frame["code"]) == ("_close", 4029), frame
    await connect(headers={"X-Forwarded-For": "203.0.113.3, 192.168.1.6"})  # another LAN client
    await health(connections=2)


# -- item 4: IPv6 /64s, rooms per address, the lobby -----------------------------


def test_an_ipv6_client_is_counted_by_its_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_key("::ffff:198.51.100.7") == address_key("198.51.100.7") == "198.51.100.7"


def v6(n: int, net: int = 2) -> dict[str, str]:
    """Headers of a client at 2001:db8:1:<net>::<n>, behind our (loopback) proxy."""
    return {"X-Forwarded-For": f"2001:db8:1:{net:x}::{n:x}"}


@pytest.mark.parametrize("settings", [make_settings(max_connections_per_address=2)])
@pytest.mark.gen_test
async def test_connections_from_one_ipv6_64_share_one_limit(connect, health):
    await connect(headers=v6(1))
    await connect(headers=v6(0xFFFF))
    third = await connect(headers=v6(0x1234))
    frame = await third.recv()
    assert (frame["type"], frame["code"]) == ("_close", 4029), frame
    other = await connect(headers=v6(1, net=3))  # another /64
    await other.join(ALICE)
    await health(connections=3)


@pytest.mark.parametrize("settings", [make_settings(max_rooms_per_address=2, rate_limit=0)])
@pytest.mark.gen_test
async def test_rooms_are_capped_per_address_but_not_the_lobby(connect):
    joined = []
    for n, room in enumerate(["a", "b", "b", "c"]):
        client = await connect(headers=v6(n + 1))
        await client.send({"type": "join", "email": f"p{n}@example.com", "room": room, "ref": room})
        joined.append(await client.recv())
    assert [frame["type"] for frame in joined] == ["joined", "joined", "joined", "error"]
    assert_error(joined[-1], "too_many_rooms", "c")
    lobby = await connect(headers=v6(9))
    await lobby.join("lobbyist@example.com")
    # Elsewhere, the same room is no problem.
    elsewhere = await connect(headers=v6(1, net=4))
    await elsewhere.send({"type": "join", "email": "e@example.com", "room": "c"})
    await elsewhere.expect("joined")


@pytest.mark.parametrize("settings", [make_settings(max_rooms=1, rate_limit=0)])
@pytest.mark.gen_test
async def test_the_lobby_is_never_refused_when_the_server_is_full(connect):
    a = await connect()
    await a.send({"type": "join", "email": ALICE, "room": "full"})
    await a.expect("joined")
    b = await connect()
    await b.send({"type": "join", "email": BOB, "room": "another"})
    assert_error(await b.expect("error"), "too_many_rooms")
    c = await connect()
    assert (await c.join("carol@example.com"))["participants"] == ["carol@example.com"]


# -- item 12: a failing flush, rooms ever named --------------------------------


class Flushing:
    """A connection as the outbox sees it: records its flushes, or fails."""

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.flushes = 0

    def flush(self, cache: dict) -> None:
        self.flushes += 1
        if self.fails:
            raise RuntimeError("a broken connection")


def test_one_failing_flush_does_not_stop_the_others(caplog):
    scheduled = []
    outbox = Outbox(scheduled.append)
    first, broken, last = Flushing(), Flushing(fails=True), Flushing()
    for connection in (first, broken, last):
        outbox.wake(connection)
    scheduled.pop()()
    assert (first.flushes, broken.flushes, last.flushes) == (1, 1, 1)
    assert "could not write to a connection" in caplog.text
    outbox.wake(last)  # and the next turn is scheduled as usual
    scheduled.pop()()
    assert last.flushes == 2


def test_the_memory_backend_keeps_logs_of_a_bounded_number_of_rooms():
    async def scenario():
        backend = MemoryBackend(Retention(messages=5), rooms=3)
        await backend.enter("busy", ALICE, "alice")
        await backend.append("busy", ALICE, "kept", None, None)
        ids = {}
        for n in range(100):
            ids[f"r{n}"] = (await backend.append(f"r{n}", BOB, "hello", None, None))[0].id
        assert len(backend._logs) == 3
        assert [m.content for m in await backend.page("busy", None, None, 5)] == ["kept"]  # someone is here
        assert await backend.page("r0", None, None, 5) == []  # dropped, as at a restart
        again = (await backend.append("r0", BOB, "again", None, None))[0].id
        assert again > ids["r0"]  # ids of a room never repeat
        await backend.close()

    asyncio.run(scenario())


def test_change_ids_of_a_room_whose_log_was_dropped_go_on_growing():
    """A page keeps the highest change id it has seen and asks for the
    changes after it: a room whose log the memory backend dropped (too many
    rooms) must not count its changes from 1 again, or that page misses them."""

    async def scenario():
        backend = MemoryBackend(rooms=2)
        first, _ = await backend.append("a", BOB, "hello", None, None)
        for text in ("one", "two", "three"):
            await backend.change("a", first.id, Change(EDIT, text))
        for room in ("b", "c"):
            await backend.append(room, BOB, "elsewhere", None, None)
        assert await backend.page("a", None, None, 5) == []  # dropped
        seen = (await backend.changes("a", 0, 0))[1]
        again, _ = await backend.append("a", BOB, "back", None, None)
        edited, _ = await backend.change("a", again.id, Change(EDIT, "back, edited"))
        changed, rev = await backend.changes("a", 3, 10)
        await backend.close()
        return seen, edited.rev, [m.content for m in changed], rev

    assert asyncio.run(scenario()) == (3, 4, ["back, edited"], 4)
