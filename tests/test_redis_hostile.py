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
