"""A connection that ends while its ``join`` is being carried out leaves
nobody behind, on a real server: its person is not left present in the room
for good (announced, listed to everyone who joins later, the connection
held by the backend), whether it ended before the hub took the join up (its
session was being looked up), while moderation looked at the join, or while
the backend recorded its presence. A client that joins and closes at once,
over and over, must not fill rooms with ghosts.

The connection here is the hub's view of one (:class:`tests.test_hub.Recorder`),
so that it ends exactly while the join waits on storage; the room is looked
at by a real client joining over SockJS.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from chatzilla.identity import Person, new_person_id
from chatzilla.signin import digest, new_secret

from .conftest import make_settings
from .helpers import redis_or_skip
from .test_hub import Recorder

REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite-link", "redis-open", "postgres-open"])
def settings(request, tmp_path):
    """Where a join waits: on the SQLite moderation store (--auth link), on
    Redis or on Postgres recording presence (--auth open, no moderation)."""
    if request.param == "sqlite-link":
        return make_settings(auth="link", storage="sqlite", db=str(tmp_path / "chatzilla.db"))
    if request.param == "postgres-open":
        return make_settings(database_url=request.getfixturevalue("database_url"))
    client = redis_or_skip(REDIS_URL)
    prefix = f"chatzilla-test-{uuid.uuid4().hex[:12]}"

    def drop() -> None:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    request.addfinalizer(drop)
    return make_settings(redis_url=REDIS_URL, redis_prefix=prefix)


async def _join_args(app, settings, email: str) -> dict:
    """The hub's join arguments for ``email``: a signed-in person's key
    under --auth link, the address itself under --auth open."""
    if settings.auth == "open":
        return {"raw_email": email}
    who = await app.signin.accounts.add_person(Person(new_person_id(), email, email.split("@")[0]))
    return {"raw_email": None, "verified": who.key()}


async def _look(app, settings, connect) -> list:
    """Who a real client joining the room now is told is present (itself included)."""
    headers = {}
    frame = {"type": "join", "room": "dev", "email": "watcher@example.com"}
    if settings.auth == "link":
        who = await app.signin.accounts.add_person(Person(new_person_id(), "watcher@example.com", "Watcher"))
        secret = new_secret()
        await app.signin.accounts.add_session(digest(secret), who.id, time.time() + 3600)
        headers = {"Cookie": f"chatzilla_session={secret}"}
    watcher = await connect("websocket", headers=headers)
    await watcher.send(frame)
    return (await watcher.expect("joined"))["participants"]


@pytest.mark.gen_test(timeout=30)
async def test_a_connection_that_ends_while_it_joins_is_not_left_present(app, settings, connect):
    hub = app.hub
    # Ended before the hub took its join up (the session was looked up meanwhile).
    early = Recorder("early")
    hub.open(early)
    hub.close(early)
    await hub.join(early, raw_room="dev", **await _join_args(app, settings, "early@example.com"))
    assert early.take() == []
    # Ended while the join waited on storage.
    late = Recorder("late")
    hub.open(late)
    joining = asyncio.ensure_future(
        hub.join(late, raw_room="dev", **await _join_args(app, settings, "late@example.com"))
    )
    await asyncio.sleep(0)
    assert not joining.done()  # it waits on storage now
    hub.close(late)
    await joining
    assert late.take() == []
    participants = await _look(app, settings, connect)
    assert len(participants) == 1, participants
