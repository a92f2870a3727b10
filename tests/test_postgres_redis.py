"""Postgres and Redis together, what is theirs alone: fan-out goes through
Redis, and with Redis down messages are still stored, acknowledged and
shared (Postgres keeps them), while joins wait for it. The chat of many
processes is tested with the other shared backends' (test_redis's ``shared``),
the contract in test_backend_contract, and a restart of Postgres in
test_postgres."""

from __future__ import annotations

import asyncio

import redis

from .sockjs_client import WebSocketClient
from .test_redis import (  # noqa: F401 (fixtures)
    health,
    private_redis,
    redis_flags,
    redis_url,
    run,
    servers,
    wait_for,
)


async def _next_message(client) -> dict:
    """The next ``message`` frame (presence comes and goes as Redis does)."""
    frame = await client.recv(timeout=15)
    while frame["type"] == "presence":
        frame = await client.recv(timeout=15)
    assert frame["type"] == "message", frame
    return frame


def test_with_redis_down_messages_are_stored_and_shared_and_joins_wait(private_redis, database_url, servers):  # noqa: F811
    one, two = servers(["--database-url", database_url, *redis_flags(private_redis.url, "both")])

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await WebSocketClient(two.url).connect()
        await alice.join("alice@example.com")
        await bob.join("bob@example.com")
        await alice.expect("presence")
        # Fan-out goes through Redis: both processes listen on its channel.
        client = redis.Redis.from_url(private_redis.url)
        assert client.pubsub_numsub("both:messages") == [(b"both:messages", 2)]
        client.close()
        before = await alice.say("before", ref="before")
        assert (await bob.expect("message"))["id"] == before["id"]

        await asyncio.to_thread(private_redis.stop)
        await asyncio.to_thread(wait_for, lambda: health(one)["status"] == "degraded", 15, "degraded")
        # Postgres keeps messages: acknowledged, and heard on the other process.
        down = await alice.say("while down", ref="down")
        got = await _next_message(bob)
        assert (got["id"], got["content"]) == (down["id"], "while down")
        # Presence is in Redis: a join is refused until it is back.
        carol = await WebSocketClient(two.url).connect()
        await carol.send({"type": "join", "email": "carol@example.com"})
        refused = await carol.expect("error")
        assert refused["code"] == "unavailable", refused

        await asyncio.to_thread(private_redis.start)
        await asyncio.to_thread(
            wait_for,
            lambda: health(one)["status"] == "ok" and health(two)["status"] == "ok",
            20,
            "both processes healthy",
        )
        after = await bob.say("after", ref="after")
        got = await _next_message(alice)
        assert (got["id"], got["content"]) == (after["id"], "after")
        joined = await carol.join("carol@example.com")
        assert [m["content"] for m in joined["history"]] == ["before", "while down", "after"]
        assert sorted(joined["participants"]) == ["alice@example.com", "bob@example.com", "carol@example.com"]
        for each in (alice, bob, carol):
            await each.close()

    run(scenario(), timeout=90)
    for server in (one, two):
        status, err = server.stop()
        assert status == 0
        assert "Traceback" not in err, err
