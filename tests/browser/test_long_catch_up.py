"""A page that missed a lot catches up on all of it.

600 messages of 2000 characters are more than one catch-up carries (it is
bounded in bytes): the ``joined`` brings the newest and says ``more``, and
the page fetches the rest page by page, down to what it showed before the
outage. It used to be closed as too slow (4008) on every catch-up, and
retried forever.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import pytest
from playwright.sync_api import expect
from tornado.websocket import websocket_connect

from .test_catch_up import RECONNECT_TIMEOUT, Outage

pytestmark = [
    pytest.mark.browser,
    # A heartbeat a second (the offline page notices at once: test_catch_up),
    # no flood control for the bot, and no disk: what is kept is not the point.
    pytest.mark.server_flags("--heartbeat-delay", "1", "--rate-limit", "0", "--storage", "memory"),
]

MISSED = 600


async def _say_all(url: str, room: str, email: str, texts: list[str]) -> None:
    ws = await websocket_connect(url.replace("http", "ws", 1).rstrip("/") + "/chat/websocket")
    await ws.write_message(json.dumps({"type": "join", "email": email, "room": room}))
    while json.loads(await ws.read_message())["type"] != "joined":
        pass
    for text in texts:
        await ws.write_message(json.dumps({"type": "message", "content": text, "ref": uuid.uuid4().hex}))
        while json.loads(await ws.read_message())["type"] != "sent":
            pass
    # Until the server's close frame: the socket is closed before the loop
    # ends (else it is collected open, later, in a test: a ResourceWarning).
    ws.close()
    while await ws.read_message() is not None:
        pass


def say_all(url: str, room: str, email: str, texts: list[str]) -> None:
    """``email`` says every one of ``texts`` in ``room`` over the raw
    WebSocket, each acknowledged before the next (on a thread: Playwright
    owns this one's loop)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_say_all(url, room, email, texts))
        except BaseException as exc:  # reported in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive() and not failure, failure


@pytest.mark.parametrize("how", ["offline", "cut"])
def test_six_hundred_long_messages_missed_all_come(people, server, how):
    people.allow_network_errors = True
    outage = Outage(people, "alice@example.com", how)
    alice = outage.person
    say_all(server.url, people.room, "bob@example.com", ["before the outage"])
    alice.sees("bob@example.com", "before the outage")

    outage.begin()
    missed = [f"missed {n:03d} " + "x" * 1985 for n in range(1, MISSED + 1)]
    say_all(server.url, people.room, "bob@example.com", missed)
    outage.end()

    expect(alice.messages).to_have_count(MISSED + 1, timeout=RECONNECT_TIMEOUT)
    assert alice.ids() == list(range(1, MISSED + 2))
    first, last = alice.messages.nth(1), alice.messages.nth(MISSED)
    expect(first.locator(".content")).to_have_text(missed[0])
    expect(last.locator(".content")).to_have_text(missed[-1])
    expect(alice.page.get_by_text("Not every missed message is shown")).to_have_count(0)
    expect(alice.status).to_have_text("Connected")
