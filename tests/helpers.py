"""Chat-level helpers shared by the protocol tests, and small test tools
(a settable clock, a free port).

The tests avoid waiting for "nothing": frames on one connection arrive in the
order the server sent them, so "b's next frame is the message a sent
afterwards" proves b got nothing in between.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

import pytest
import redis


class Clock:
    """A clock a test sets by hand (``clock.now += 1``); call it for the time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A loopback TCP port nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def eventually(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Returns once ``condition()`` is true, polling every 10 ms; fails after
    ``timeout`` seconds (generous: a loaded machine is slow, a quiet one
    returns at once)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what or condition}"
        await asyncio.sleep(0.01)


MESSAGE_KEYS = {"type", "id", "sender", "content", "ts"}
PRESENCE_KEYS = {"type", "event", "email", "count"}
JOINED_KEYS = {"type", "email", "participants", "history"}


async def joined_pair(
    open_client, a_email="alice@example.com", b_email="bob@example.com", a_kind=None, b_kind=None
):
    """Two joined clients; ``a`` has read ``b``'s presence join."""
    a = await open_client(a_kind)
    await a.join(a_email)
    b = await open_client(b_kind)
    await b.join(b_email)
    await a.expect("presence")
    return a, b


async def say_and_check(sender, receivers, content, ref=None, sender_email=None):
    """``sender`` says ``content``; it gets ``sent``, and the next frame of
    each receiver is exactly that message. Returns the ack."""
    before = time.time()
    ack = await sender.say(content, ref)
    expected_ack_keys = {"type", "id", "ts"} | ({"ref"} if ref is not None else set())
    assert set(ack) == expected_ack_keys, ack
    if ref is not None:
        assert ack["ref"] == ref
    assert isinstance(ack["id"], int) and not isinstance(ack["id"], bool)
    assert isinstance(ack["ts"], float)
    # ts is the server's clock; it runs on this machine (a second of slack
    # for clock adjustments).
    assert before - 1 <= ack["ts"] <= time.time() + 1
    for receiver in receivers:
        message = await receiver.expect("message")
        assert set(message) == MESSAGE_KEYS, message
        assert message["id"] == ack["id"] and message["ts"] == ack["ts"]
        assert message["content"] == content.strip()
        if sender_email is not None:
            assert message["sender"] == sender_email
    return ack


def assert_error(frame, code, ref=None):
    """``frame`` is an ``error`` with ``code``, a reason, and ``ref`` exactly
    when one is given."""
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert isinstance(frame["reason"], str) and frame["reason"].strip(), frame
    if ref is None:
        assert set(frame) == {"type", "code", "reason"}, frame
    else:
        assert set(frame) == {"type", "code", "reason", "ref"}, frame
        assert frame["ref"] == ref, frame


async def still_works(client, observer, content="still here", email=None):
    """``client`` (joined) can still chat and ``observer`` (joined) got
    nothing from ``client`` before this message."""
    return await say_and_check(client, [observer], content, ref="after-error", sender_email=email)


def redis_or_skip(url: str) -> redis.Redis:
    """A client of the tests' Redis at ``url`` once it answers a PING.

    Without a Redis the test is skipped, unless CHATZILLA_REQUIRE_REDIS is
    set (as in CI), where a Redis test must fail rather than pass by skipping.
    """
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError:
        if os.environ.get("CHATZILLA_REQUIRE_REDIS"):
            raise
        pytest.skip(f"no Redis answers at {url}")
    return client
