"""Many processes, one chat: Chatzilla processes sharing rooms through a
real Redis, and the same tests through a real Postgres alone (only
DATABASE_URL: LISTEN/NOTIFY and presence tables; a database of each test's
own, see tests/postgres.py) and through both (history in Postgres, fan-out
and presence in Redis).

Uses the Redis at $CHATZILLA_TEST_REDIS_URL (default redis://127.0.0.1:6379/0)
with a key prefix of its own per test, and deletes only those keys. The
restart test runs a private redis-server on a free port instead, so it never
stops a Redis that others use. Without a Redis these tests are skipped, loudly;
with CHATZILLA_REQUIRE_REDIS=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest
import redis

from chatzilla.backends.redis import RedisBackend

from .helpers import eventually, free_port
from .server_process import ServerProcess
from .sockjs_client import WebSocketClient, XhrPollingClient

REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _answers(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="module")
def redis_url() -> str:
    if not _answers(REDIS_URL):
        reason = f"NO REDIS ANSWERS at {REDIS_URL}: the multi-process tests did not run"
        if os.environ.get("CHATZILLA_REQUIRE_REDIS"):
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
def prefix(redis_url):
    name = f"chatzilla-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["redis", "postgres", "postgres+redis"])
def shared(request) -> list[str]:
    """The flags that make processes one chat: a Redis (with a key prefix
    of the test's own), a Postgres database of the test's own alone, or
    both (Postgres keeps history, Redis carries fan-out and presence)."""
    flags = []
    if request.param.startswith("postgres"):
        flags += ["--database-url", request.getfixturevalue("database_url")]
    if request.param.endswith("redis"):
        flags += redis_flags(request.getfixturevalue("redis_url"), request.getfixturevalue("prefix"))
    return flags


def redis_flags(url: str, prefix: str) -> list[str]:
    return ["--redis-url", url, "--redis-prefix", prefix]


@pytest.fixture
def servers(request):
    """``servers(flags, n, grace=0)`` starts n processes sharing what
    ``flags`` name (see ``shared``), with a presence grace period of
    ``grace`` seconds (none: people leave as their last connection closes,
    unless a test is about it)."""
    started: list[ServerProcess] = []

    def start(flags: list[str], n: int = 2, grace: float = 0.0) -> list[ServerProcess]:
        batch = [
            ServerProcess(
                *flags,
                "--disconnect-delay",
                "1",
                "--rate-limit",
                "0",
                "--presence-grace",
                str(grace),
            ).start()
            for _ in range(n)
        ]
        started.extend(batch)
        return batch

    yield start
    # Every one is stopped, even after one did not stop cleanly.
    problems = []
    for server in started:
        try:
            if server.proc.poll() is None:
                # Shown with a failed test's report: what the server saw.
                print(f"--- log of the server at {server.url} ---\n{server.stop()[1]}")
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def health(server: ServerProcess) -> dict:
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as response:
        return json.load(response)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_people_on_two_processes_chat(shared, servers):
    one, two = servers(shared)

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await XhrPollingClient(two.url).connect()
        try:
            await alice.join("alice@example.com")
            joined = await bob.join("bob@example.com")
            assert joined["participants"] == ["alice@example.com", "bob@example.com"]
            presence = await alice.expect("presence")
            assert (presence["event"], presence["email"], presence["count"]) == ("join", "bob@example.com", 2)
            ids = []
            for i in range(10):
                sender, receiver = (alice, bob) if i % 2 == 0 else (bob, alice)
                ack = await sender.say(f"message {i}", ref=f"r{i}")
                got = await receiver.expect("message")
                assert (got["id"], got["content"], got["ts"]) == (ack["id"], f"message {i}", ack["ts"])
                ids.append(ack["id"])
            assert ids == list(range(1, 11))
        finally:
            await alice.close()
            await bob.close()

    run(scenario())


def test_messages_sent_at_once_on_two_processes_reach_everyone_once_in_order(shared, servers):
    one, two = servers(shared)
    rounds, writers_per_process = 10, 5
    total = rounds * writers_per_process * 2

    async def chatter(writer, i: int) -> list[int]:
        """Send ``rounds`` messages, each once the last is acknowledged;
        return every id this connection saw, acknowledgements and the
        others' messages together, in the order they came, up to the last."""
        ids = []
        for k in range(rounds):
            await writer.send({"type": "message", "content": f"{i}:{k}", "ref": f"{i}-{k}"})
            while True:
                frame = await writer.recv(timeout=15)
                if frame["type"] in ("message", "sent"):
                    ids.append(frame["id"])
                if frame["type"] == "sent":
                    assert frame["ref"] == f"{i}-{k}", frame
                    break
        while len(ids) < total:
            frame = await writer.recv(timeout=15)
            if frame["type"] == "message":
                ids.append(frame["id"])
        return ids

    async def scenario():
        readers = [await WebSocketClient(server.url).connect() for server in (one, two)]
        writers = [await WebSocketClient(server.url).connect() for server in (one, two) * writers_per_process]
        try:
            for i, client in enumerate(readers + writers):
                await client.join(f"person{i}@example.com")
            # The writers' appends race in the shared store, from both processes.
            seen = await asyncio.gather(*(chatter(writer, i) for i, writer in enumerate(writers)))
            for ids in seen:
                assert ids == list(range(1, total + 1))  # in order, each once
            for reader in readers:
                ids = []
                while len(ids) < total:
                    frame = await reader.recv(timeout=15)
                    if frame["type"] == "message":
                        ids.append(frame["id"])
                assert ids == list(range(1, total + 1))  # each once, in id order, no gap
            await asyncio.sleep(1)
            for client in readers + writers:  # and no message again
                while not client.frames.empty():
                    assert client.frames.get_nowait()["type"] not in ("message", "sent")
        finally:
            for client in readers + writers:
                await client.close()

    run(scenario(), timeout=90)


def test_history_since_and_retries_across_processes(shared, servers):
    one, two = servers(shared)

    async def scenario():
        writer = await WebSocketClient(one.url).connect()
        await writer.join("writer@example.com")
        acks = [await writer.say(f"m{i}", ref=f"w{i}") for i in range(10)]
        # The writer's connection drops; it retries its last message on the
        # other process with the same ref: the first id, stored once.
        await writer.close()
        retry = await WebSocketClient(two.url).connect()
        await retry.send({"type": "join", "email": "writer@example.com", "since": acks[2]["id"]})
        joined = await retry.expect("joined")
        assert [m["content"] for m in joined["history"]] == [f"m{i}" for i in range(3, 10)]
        again = await retry.say("m9", ref="w9")
        assert (again["id"], again["ts"]) == (acks[9]["id"], acks[9]["ts"])
        reader = await XhrPollingClient(one.url).connect()
        history = (await reader.join("reader@example.com"))["history"]
        assert [m["id"] for m in history] == [a["id"] for a in acks]
        await reader.send({"type": "history", "before": acks[5]["id"], "limit": 3})
        page = await reader.expect("history")
        assert [m["content"] for m in page["messages"]] == ["m2", "m3", "m4"] and page["more"]
        await retry.close()
        await reader.close()

    run(scenario())


def test_one_person_in_two_processes_is_one_participant(shared, servers):
    one, two = servers(shared)

    async def scenario():
        watcher = await WebSocketClient(one.url).connect()
        await watcher.join("watcher@example.com")
        tab1 = await WebSocketClient(one.url).connect()
        tab2 = await WebSocketClient(two.url).connect()
        await tab1.join("alice@example.com")
        assert (await watcher.expect("presence"))["count"] == 2
        joined = await tab2.join("alice@example.com")
        assert joined["participants"] == ["watcher@example.com", "alice@example.com"]
        await tab1.close()
        # Still present through tab2: the watcher's next frame is tab2's message.
        await tab2.say("still here")
        assert (await watcher.expect("message"))["content"] == "still here"
        await tab2.close()
        leave = await watcher.expect("presence")
        assert (leave["event"], leave["email"], leave["count"]) == ("leave", "alice@example.com", 1)
        await watcher.close()

    run(scenario())


def test_people_of_a_killed_process_leave(shared, servers):
    one, two = servers(shared)

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        await alice.join("alice@example.com")
        bob = await WebSocketClient(two.url).connect()
        await bob.join("bob@example.com")
        await alice.expect("presence")
        started = time.monotonic()
        two.proc.send_signal(signal.SIGKILL)
        leave = await alice.expect("presence", timeout=15)
        elapsed = time.monotonic() - started
        assert (leave["event"], leave["email"], leave["count"]) == ("leave", "bob@example.com", 1)
        await bob.close()
        await alice.close()
        return elapsed

    elapsed = run(scenario())
    two.stop(signal.SIGKILL)
    assert elapsed < 10


# -- the presence grace period, across processes --------------------------------

GRACE = 2.0


async def watched_alice(watcher_server: ServerProcess, alice_server: ServerProcess):
    """A watcher, then alice, each joined on their process; the watcher has
    seen alice join."""
    watcher = await WebSocketClient(watcher_server.url).connect()
    await watcher.join("watcher@example.com")
    alice = await WebSocketClient(alice_server.url).connect()
    await alice.join("alice@example.com")
    assert (await watcher.expect("presence"))["event"] == "join"
    return watcher, alice


def test_back_on_another_process_within_the_grace_period_nobody_hears(shared, servers):
    one, two = servers(shared, grace=GRACE)

    async def scenario():
        watcher, alice = await watched_alice(one, one)
        await alice.close()  # a reload, which a balancer sends elsewhere
        await asyncio.sleep(GRACE / 4)
        again = await WebSocketClient(two.url).connect()
        joined = await again.join("alice@example.com")
        assert joined["participants"] == ["watcher@example.com", "alice@example.com"]
        await watcher.nothing(wait=GRACE + 1.5)
        closed = time.monotonic()
        await again.close()
        leave = await watcher.expect("presence", timeout=GRACE + 5)
        assert (leave["event"], leave["email"], leave["count"]) == ("leave", "alice@example.com", 1)
        await watcher.nothing(wait=1.5)  # once, whichever process said it
        await watcher.close()
        return time.monotonic() - closed

    assert run(scenario()) >= GRACE


@pytest.mark.gen_test(timeout=30)
async def test_a_clean_stop_starts_the_grace_period_of_those_it_parked_again(redis_url, prefix):
    # Their grace ran from their connection's close, early in a stop that
    # then took its time: on a loaded machine the test below saw alice leave
    # before she was back on the new process. Postgres restarts it (_goodbye).
    now = [1000.0]
    backend = RedisBackend(redis_url, prefix, clock=lambda: now[0], grace=10.0)
    backend.start(lambda *a: None, lambda *a: None)
    await backend.enter("lobby", "alice@example.com", object())
    await backend.enter("lobby", "bob@example.com", object())
    store = redis.Redis.from_url(redis_url)
    try:
        backend.leave("lobby", "alice@example.com", object())
        backend.leave("lobby", "bob@example.com", object())
        away = f"{prefix}:away"
        await eventually(lambda: store.zcard(away) == 2, what="both parked")
        assert store.zscore(away, "lobby\talice@example.com") == 1010.0
        store.zrem(away, "lobby\tbob@example.com")  # bob came back on another process
        now[0] += 5.0  # the stop takes its time
        await backend.close()
        assert store.zscore(away, "lobby\talice@example.com") == 1015.0
        assert store.zscore(away, "lobby\tbob@example.com") is None
    finally:
        store.close()


def test_people_who_come_back_to_a_restarted_process_were_never_away(shared, servers):
    # Three times the usual grace: the stop (parking alice), her new
    # connection and her join must all fit in it, and on a loaded machine
    # they outran 2 s (a leave was announced).
    grace = 3 * GRACE
    one, two = servers(shared, grace=grace)

    async def scenario():
        watcher, alice = await watched_alice(one, two)
        # The new process is up first, as in a rolling deploy (a process
        # started after the stop could take longer than the grace on a busy machine).
        (three,) = await asyncio.to_thread(servers, shared, n=1, grace=grace)
        # SIGTERM, as a deploy does; this loop goes on meanwhile, for alice's
        # client to see its connection close.
        await asyncio.get_running_loop().run_in_executor(None, two.stop)
        await alice.close()
        back = await WebSocketClient(three.url).connect()
        joined = await back.join("alice@example.com")
        assert joined["participants"] == ["watcher@example.com", "alice@example.com"]
        await watcher.nothing(wait=grace + 2)
        await back.close()
        await watcher.close()

    run(scenario(), timeout=60)


# -- Redis restarted mid-run ----------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own, on a free port, keeping nothing on disk."""

    def __init__(self, tmp_path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(self.url), what="the private redis-server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_redis(redis_url, tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed: the restart test did not run")
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_pooled_connections_to_a_restarted_redis_are_replaced_before_use(private_redis):
    # Connections pooled while Redis ran are closed by its restart: the
    # commands after it (several at once, as a busy process sends them) get
    # new ones instead of failing "Connection closed by server".
    from chatzilla.backends.redis import client

    async def scenario():
        redis_client = client(private_redis.url)
        try:
            assert await asyncio.gather(*(redis_client.ping() for _ in range(5))) == [True] * 5
            await asyncio.to_thread(private_redis.stop)
            await asyncio.to_thread(private_redis.start)
            assert await asyncio.gather(*(redis_client.ping() for _ in range(5))) == [True] * 5
        finally:
            await redis_client.aclose()

    run(scenario())


def test_a_process_in_many_rooms_is_not_taken_for_dead_after_redis_restarts(private_redis, caplog):
    # After a restart each process registers its people again and checks
    # every room's streams for a reset. The checks waited on the reader's
    # connection (held by XREAD BLOCK a second at a time), two a room, and
    # the heartbeat with them: past its key's 3 s the other process took it
    # for dead and told everyone its people had left.
    from chatzilla.backends.redis import HEARTBEAT, NODE_TTL, RedisBackend

    rooms = [f"room{n}" for n in range(4)]

    async def scenario():
        many = RedisBackend(private_redis.url, "restart")
        other = RedisBackend(private_redis.url, "restart")
        heard = []
        many.start(lambda *_: None, lambda *_: None)
        other.start(lambda *_: None, lambda room, change, _: heard.append((room, change.event, change.email)))
        try:
            for room in rooms:
                await many.enter(room, "a@example.com", "tab")
                await many.append(room, "a@example.com", "before", None, "tab")
            await asyncio.to_thread(private_redis.stop)
            await asyncio.to_thread(private_redis.start)
            resets = lambda: sum("stream was reset" in r.getMessage() for r in caplog.records)  # noqa: E731
            while resets() < len(rooms):  # every room checked (run's timeout bounds it)
                await asyncio.sleep(0.1)
            # Long enough for the other process to see the key expire, were it
            # not kept alive.
            await asyncio.sleep(NODE_TTL + 2 * HEARTBEAT)
            return [event for event in heard if event[1] == "leave"]
        finally:
            await other.close()
            await many.close()

    caplog.set_level("INFO", logger="chatzilla.redis")
    assert run(scenario(), timeout=60) == []


def test_chat_recovers_after_redis_restarts(private_redis, servers):
    one, two = servers(redis_flags(private_redis.url, "restart"))

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await WebSocketClient(two.url).connect()
        carol = None
        try:
            await alice.join("alice@example.com")
            await bob.join("bob@example.com")
            await alice.expect("presence")
            await alice.say("before")
            assert (await bob.expect("message"))["content"] == "before"

            private_redis.stop()
            error = None
            for _ in range(50):  # until the server notices Redis is gone
                await alice.send({"type": "message", "content": "while down", "ref": "down"})
                frame = await alice.recv(timeout=10)
                if frame["type"] == "error":
                    error = frame
                    break
                await asyncio.sleep(0.1)
            # Redis went away with the command perhaps on its way: the outcome
            # may be unknown (then the same ref again is safe) rather than none.
            assert error is not None and error["ref"] == "down"
            assert error["code"] in ("unavailable", "outcome_unknown"), error
            assert (await asyncio.to_thread(health, one))["status"] == "degraded"
            page = await asyncio.to_thread(urllib.request.urlopen, f"{one.url}/", None, 5)
            with page:
                assert page.status == 200  # pages still load

            private_redis.start()
            await asyncio.to_thread(
                wait_for,
                lambda: health(one)["status"] == "ok" and health(two)["status"] == "ok",
                15,
                "both processes healthy",
            )
            # Same connections, no reconnect needed: the chat works again, and
            # both people are present again in the restarted Redis.
            for attempt in range(50):
                await alice.send({"type": "message", "content": "after", "ref": f"after-{attempt}"})
                frame = await alice.recv(timeout=10)
                while frame["type"] == "presence":  # re-registration may announce people again
                    frame = await alice.recv(timeout=10)
                if frame["type"] == "sent":
                    break
                assert (frame["type"], frame["ref"]) == ("error", f"after-{attempt}"), frame
                assert frame["code"] in ("unavailable", "outcome_unknown"), frame
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("sends never recovered")
            got = await bob.recv(timeout=10)
            while got["type"] == "presence":  # re-registration may announce people again
                got = await bob.recv(timeout=10)
            assert got["type"] == "message" and got["content"] == "after"
            carol = await WebSocketClient(one.url).connect()
            joined = await carol.join("carol@example.com")
            assert sorted(joined["participants"]) == [
                "alice@example.com",
                "bob@example.com",
                "carol@example.com",
            ]
        finally:  # a failed check must not leave them open (ResourceWarnings later)
            for client in (alice, bob, carol):
                if client is not None:
                    await client.close()

    run(scenario(), timeout=60)
    for server in (one, two):
        status, err = server.stop()
        assert status == 0
        assert "Traceback" not in err, err


def test_append_returns_once_its_message_is_delivered_in_this_process(redis_url, prefix):
    # The Backend contract: when append returns, the message is stored and
    # has been passed to deliver (Redis delivers through its stream reader).
    from chatzilla.backends.redis import RedisBackend

    async def scenario():
        backend = RedisBackend(redis_url, prefix)
        delivered = []
        backend.start(lambda room, message, origin: delivered.append((message.id, origin)), lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            late = []
            for n in range(20):
                message, duplicate = await backend.append("lobby", "a@example.com", f"m{n}", None, "tab")
                assert not duplicate
                if (message.id, "tab") not in delivered:
                    late.append(message.id)
            return late, [id for id, _ in delivered]
        finally:
            await backend.close()

    late, delivered = asyncio.run(scenario())
    assert late == []
    assert delivered == list(range(1, 21))


def test_append_does_not_wait_for_a_room_nobody_here_reads(redis_url, prefix, monkeypatch):
    # The sender's last connection leaves while its message is on its way,
    # or nobody here was ever in the room (an append of its own, as the
    # backend contract tests make): append returns without waiting for a
    # delivery that will not come (the bounded wait made endless here, so
    # that waiting would show).
    from chatzilla.backends import redis as redis_backend

    monkeypatch.setattr(redis_backend, "DELIVERY_WAIT", 3600.0)

    async def scenario():
        backend = redis_backend.RedisBackend(redis_url, prefix)
        backend.start(lambda *_: None, lambda *_: None)
        try:
            await backend.enter("lobby", "a@example.com", "tab")
            appending = asyncio.ensure_future(backend.append("lobby", "a@example.com", "bye", None, "tab"))
            await asyncio.sleep(0)  # the append is on its way to Redis
            backend.leave("lobby", "a@example.com", "tab", at_once=True)
            message, _ = await asyncio.wait_for(appending, 30)
            never_here = backend.append("dev", "a@example.com", "hi", None, "tab")
            elsewhere, _ = await asyncio.wait_for(never_here, 30)
            return message, elsewhere, await backend.page("dev", None, None, 10)
        finally:
            await backend.close()

    message, elsewhere, stored = asyncio.run(scenario())
    assert message.content == "bye"
    assert [(m.id, m.content) for m in stored] == [(elsewhere.id, "hi")]


def test_edits_and_deletes_across_processes_and_after_a_catch_up(shared, servers):
    one, two = servers(shared)

    async def changed(client, ref=None):
        """The ``changed`` frame (with ``ref``: the answer of the two the
        changer gets), past presence frames (Carol comes and goes)."""
        frames: list[dict] = []
        while len(frames) < (1 if ref is None else 2):
            frame = await client.recv()
            if frame["type"] != "presence":
                assert frame["type"] == "changed", frame
                frames.append(frame)
        return next(f for f in frames if f.get("ref") == ref)

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await XhrPollingClient(two.url).connect()
        await alice.join("alice@example.com")
        await bob.join("bob@example.com")
        await alice.expect("presence")
        acks = [await alice.say(f"m{i}") for i in range(4)]
        await bob.expect_many("message", 4)
        # Carol reads on process two, then goes offline.
        carol = await WebSocketClient(two.url).connect()
        await carol.send({"type": "join", "email": "carol@example.com", "rev": 0})
        seen = await carol.expect("joined")
        await carol.close()
        await alice.send({"type": "edit", "id": acks[0]["id"], "content": "m0 edited", "ref": "e"})
        answer = await changed(alice, "e")
        live = await changed(bob)
        assert (live["id"], live["content"], live["rev"]) == (acks[0]["id"], "m0 edited", answer["rev"])
        await alice.send({"type": "delete", "id": acks[2]["id"], "ref": "d"})
        await changed(alice, "d")
        assert (await changed(bob))["deleted"] is True
        # Bob may not touch Alice's message, from either process.
        await bob.send({"type": "delete", "id": acks[1]["id"], "ref": "b"})
        error = await bob.recv()
        while error["type"] == "presence":
            error = await bob.recv()
        assert error["code"] == "not_yours"
        # But he may react to it, and Alice sees it on her process.
        await bob.send({"type": "react", "id": acks[1]["id"], "emoji": "🎉", "ref": "b"})
        await changed(bob, "b")
        reacted = await changed(alice)
        assert reacted["reactions"] == [{"emoji": "🎉", "count": 1, "people": ["bob@example.com"]}]
        back = await WebSocketClient(two.url).connect()
        await back.send(
            {"type": "join", "email": "carol@example.com", "since": seen["history"][-1]["id"], "rev": 0}
        )
        joined = await back.expect("joined")
        assert joined["history"] == [] and joined["rev"] == answer["rev"] + 2
        assert [(c["id"], c["content"], c.get("deleted", False)) for c in joined["changes"]] == [
            (acks[0]["id"], "m0 edited", False),
            (acks[2]["id"], "", True),
            (acks[1]["id"], "m1", False),
        ]
        assert joined["changes"][-1]["reactions"][0]["emoji"] == "🎉"
        for client in (alice, bob, back):
            await client.close()

    run(scenario())
