"""Hostile input and faults against the Redis backend (issue 12), with the
Redis fixtures of test_redis (a key prefix per test, processes sharing it)."""

from __future__ import annotations

import asyncio
import gc
import signal
import time
import weakref

from chatzilla.backends.redis import NODE_TTL

from .sockjs_client import WebSocketClient
from .test_redis import (  # noqa: F401 (fixtures)
    health,
    prefix,
    private_redis,
    redis_flags,
    redis_url,
    run,
    servers,
    wait_for,
)


def test_bad_input_does_not_flip_healthz(redis_url, prefix, servers):  # noqa: F811
    (one,) = servers(redis_flags(redis_url, prefix), 1)
    wait_for(lambda: health(one)["status"] == "ok", what="the first heartbeat")

    async def scenario():
        mallory = await WebSocketClient(one.url).connect()
        try:
            await mallory.send({"type": "join", "email": "mallory@example.com", "since": 2**64})
            assert (await mallory.expect("error"))["code"] == "bad_frame"
            assert health(one)["status"] == "ok"
            await mallory.join("mallory@example.com")
            await mallory.send({"type": "history", "before": 2**64})
            assert (await mallory.expect("error"))["code"] == "bad_frame"
            assert health(one)["status"] == "ok"
        finally:
            await mallory.close()

    run(scenario())


def test_ref_keys_of_different_senders_never_collide(redis_url, prefix, servers):  # noqa: F811
    """``mallory@x.com`` with ref ``y:r1`` and ``mallory@x.com:y`` with ref
    ``r1`` once shared a key: the second was acknowledged with the first's id
    and never stored."""
    (one,) = servers(redis_flags(redis_url, prefix), 1)

    async def scenario():
        first = await WebSocketClient(one.url).connect()
        second = await WebSocketClient(one.url).connect()
        try:
            await first.join("mallory@x.com")
            await second.join("mallory@x.com:y")
            await first.expect("presence")
            one_ack = await first.say("first", "y:r1")
            assert (await second.expect("message"))["content"] == "first"
            two_ack = await second.say("second", "r1")
            assert two_ack["id"] == one_ack["id"] + 1
            message = await first.expect("message")
            assert (message["sender"], message["content"]) == ("mallory@x.com:y", "second")
        finally:
            await first.close()
            await second.close()

    run(scenario())


def test_a_paused_process_does_not_tell_its_people_they_left(redis_url, prefix, servers):  # noqa: F811
    """SIGSTOP long enough for the other process to reap this one and end
    its people's grace period, then SIGCONT: the others heard them leave
    (they were unreachable) and come back, but they themselves hear nothing."""
    grace = 1.0
    one, two = servers(redis_flags(redis_url, prefix), grace=grace)

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await WebSocketClient(one.url).connect()
        carol = await WebSocketClient(two.url).connect()
        try:
            await alice.join("alice@example.com")
            await bob.join("bob@example.com")
            await alice.expect("presence")
            await carol.join("carol@example.com")
            await alice.expect("presence")
            await bob.expect("presence")
            one.proc.send_signal(signal.SIGSTOP)
            try:
                left = [await carol.expect("presence", timeout=NODE_TTL + grace + 5) for _ in range(2)]
            finally:
                one.proc.send_signal(signal.SIGCONT)
            assert {(f["event"], f["email"]) for f in left} == {
                ("leave", "alice@example.com"),
                ("leave", "bob@example.com"),
            }
            back = [await carol.expect("presence", timeout=10) for _ in range(2)]
            assert {f["event"] for f in back} == {"join"}
            # Alice and Bob were never told anything about themselves.
            await alice.send({"type": "message", "content": "still here", "ref": "a1"})
            assert (await alice.recv(timeout=10))["type"] == "sent"
            assert (await bob.recv(timeout=10))["type"] == "message"
        finally:
            for client in (alice, bob, carol):
                await client.close()

    run(scenario(), timeout=60)


def test_a_paused_redis_is_an_unknown_outcome_resolved_by_the_same_ref(private_redis, servers):  # noqa: F811
    """Redis stopped (SIGSTOP) while a message is stored: the store times out
    but Redis runs it when it resumes. The sender is told the outcome is
    unknown (never `unavailable`, which means nothing was stored), retries
    with the same ref, and gets one `sent`; ids on its connection only grow."""
    (one,) = servers(redis_flags(private_redis.url, "paused"), 1)

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await WebSocketClient(one.url).connect()
        try:
            await alice.join("alice@example.com")
            await bob.join("bob@example.com")
            await alice.expect("presence")
            before = await alice.say("before", "r0")
            assert (await bob.expect("message"))["id"] == before["id"]
            seen = [before]
            private_redis.proc.send_signal(signal.SIGSTOP)
            try:
                await alice.send({"type": "message", "content": "while paused", "ref": "r1"})
                frame = await alice.recv(timeout=10)
                assert (frame["type"], frame.get("code"), frame.get("ref")) == (
                    "error",
                    "outcome_unknown",
                    "r1",
                ), frame
            finally:
                private_redis.proc.send_signal(signal.SIGCONT)
            # The page's retry, with the same ref, until it is answered.
            acks = []
            while not acks:
                await alice.send({"type": "message", "content": "while paused", "ref": "r1"})
                while True:
                    frame = await alice.recv(timeout=10)
                    seen.append(frame)
                    if frame["type"] == "sent":
                        acks.append(frame)
                        break
                    if frame["type"] == "error":
                        assert frame["code"] == "outcome_unknown", frame
                        break
            await alice.say("after", "r2")
            seen.append(await bob.expect("message"))  # bob: "while paused", once
            assert seen[-1]["content"] == "while paused"
            assert (await bob.expect("message"))["content"] == "after"
            await bob.nothing(0.5)
            # Alice's own frames: no copy of her message, one sent for r1, ids growing.
            mine = [f for f in seen if f["type"] in ("sent", "message") and f is not seen[-1]]
            assert [f["type"] for f in mine] == ["sent", "sent"], mine
            assert mine[0]["id"] < mine[1]["id"]
            await alice.nothing(0.5)
        finally:
            await alice.close()
            await bob.close()

    run(scenario(), timeout=60)


class Tab:
    """A connection as the backend sees it: an opaque origin token."""


def test_a_sender_that_leaves_before_its_message_is_read_back_is_released(redis_url, prefix):  # noqa: F811
    from chatzilla.backends.redis import RedisBackend

    async def scenario():
        backend = RedisBackend(redis_url, prefix)
        backend.start(lambda *_: None, lambda *_: None)
        try:
            tabs = []
            for n in range(20):
                tab = Tab()
                tabs.append(weakref.ref(tab))
                room = f"room{n}"
                await backend.enter(room, "a@example.com", tab)
                appending = asyncio.ensure_future(backend.append(room, "a@example.com", "bye", None, tab))
                await asyncio.sleep(0)  # on its way to Redis
                backend.leave(room, "a@example.com", tab, at_once=True)
                await asyncio.wait_for(appending, 30)
                del tab, appending
            # Let go of at the reader's next round (a second or so): until
            # then, or 30 s, whichever comes first.
            deadline = time.monotonic() + 30
            while True:
                gc.collect()
                kept = [ref for ref in tabs if ref() is not None]
                if not kept or time.monotonic() > deadline:
                    return kept
                await asyncio.sleep(0.1)
        finally:
            await backend.close()

    assert asyncio.run(scenario()) == []
