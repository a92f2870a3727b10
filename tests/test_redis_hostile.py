"""Hostile input and faults against the Redis backend (issue 12), with the
Redis fixtures of test_redis (a key prefix per test, processes sharing it)."""

from __future__ import annotations

from .sockjs_client import WebSocketClient
from .test_redis import health, prefix, redis_url, run, servers, wait_for  # noqa: F401 (fixtures)


def test_bad_input_does_not_flip_healthz(redis_url, prefix, servers):  # noqa: F811
    (one,) = servers(redis_url, prefix, 1)
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
    (one,) = servers(redis_url, prefix, 1)

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
