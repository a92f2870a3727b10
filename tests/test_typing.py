"""The ``typing`` extension over the wire: relayed to the others in the room,
throttled per connection, ``not_joined`` before a join.

"Nothing was relayed" is proven by ordering: the observer's next frame is
the message sent afterwards.
"""

from __future__ import annotations

import pytest

from .helpers import assert_error, joined_pair, say_and_check


@pytest.mark.gen_test
async def test_typing_reaches_the_others_in_the_room_and_not_the_typist(clients):
    alice, bob = await joined_pair(clients)
    await alice.send({"type": "typing"})
    assert await bob.expect("typing") == {"type": "typing", "email": "alice@example.com"}
    # Alice got no reply: her next frame is the ack of what she says next.
    await say_and_check(alice, [bob], "done typing")
    await bob.send({"type": "typing", "ref": "t1"})
    assert await alice.expect("typing") == {"type": "typing", "email": "bob@example.com"}


@pytest.mark.gen_test
async def test_typing_stays_in_its_room(clients):
    alice, bob = await joined_pair(clients)
    dev = await clients()
    await dev.send({"type": "join", "email": "carol@example.com", "room": "dev"})
    await dev.expect("joined")
    await dev.send({"type": "typing"})
    await say_and_check(dev, [], "typed in dev")
    await say_and_check(alice, [bob], "lobby goes on")  # bob's next frame: no typing came


@pytest.mark.gen_test
async def test_typing_more_often_than_the_interval_is_dropped_silently(clients):
    alice, bob = await joined_pair(clients)
    for _ in range(5):
        await alice.send({"type": "typing", "ref": "t"})
    # One typing for bob, then the message; no error for alice, whose next
    # frame is the ack.
    assert (await bob.expect("typing"))["email"] == "alice@example.com"
    await say_and_check(alice, [bob], "after five typing frames")


@pytest.mark.gen_test
async def test_typing_before_join_is_not_joined(clients):
    client = await clients()
    await client.send({"type": "typing", "ref": "t-0"})
    assert_error(await client.expect("error"), "not_joined", ref="t-0")
    await client.send({"type": "typing"})
    assert_error(await client.expect("error"), "not_joined")
