"""Message ids across transports and under concurrent senders.

``id`` is strictly increasing: every receiver sees the ids in order with no
gap, whichever transport carries it, while several senders fire at once.
"""

from __future__ import annotations

import asyncio

import pytest

from .conftest import make_settings
from .helpers import MESSAGE_KEYS, say_and_check
from .sockjs_client import KINDS

SENDERS = 4
EACH = 25


@pytest.fixture
def settings():
    # Each sender fires EACH messages at once, past the flood limit. SQLite:
    # ids come from the database, written from its own thread.
    return make_settings(rate_limit=0, storage="sqlite")


async def join_all(open_client, kinds, prefix):
    """Open and join one client per kind; returns them with every presence
    frame they got from each other read."""
    joined = []
    for i, kind in enumerate(kinds):
        client = await open_client(kind)
        await client.join(f"{prefix}{i}@example.com")
        for earlier in joined:
            assert (await earlier.expect("presence"))["email"] == f"{prefix}{i}@example.com"
        joined.append(client)
    return joined


@pytest.mark.gen_test
async def test_every_transport_talks_to_every_other(connect):
    kinds = sorted(KINDS)
    everyone = await join_all(connect, kinds, "p")
    for i, sender in enumerate(everyone):
        others = everyone[:i] + everyone[i + 1 :]
        await say_and_check(
            sender, others, f"from {kinds[i]} ✓", ref=kinds[i], sender_email=f"p{i}@example.com"
        )


async def read_ids(client, total, skip_email):
    """``client``'s next frames up to id ``total``, leaving out the presence
    of ``skip_email`` (who joins while messages fly)."""
    frames = []
    while not frames or frames[-1]["id"] < total:
        frame = await client.recv(timeout=10)
        if frame["type"] == "presence":
            assert frame["email"] == skip_email and frame["event"] == "join", frame
            continue
        frames.append(frame)
    return frames


@pytest.mark.gen_test(timeout=30)
async def test_ids_stay_in_order_with_concurrent_senders(clients, connect, transport):
    receivers = await join_all(connect, sorted(KINDS), "r")
    senders = await join_all(clients, [None] * SENDERS, "s")
    for receiver in receivers:
        for i in range(SENDERS):
            assert (await receiver.expect("presence"))["email"] == f"s{i}@example.com"
    newcomer = await clients()

    async def blast(i, sender):
        for j in range(EACH):  # without waiting for the acks
            await sender.send({"type": "message", "content": f"s{i}-{j}", "ref": f"{i}/{j}"})

    async def join_meanwhile():
        await asyncio.sleep(0.005)  # wherever it lands, history + live must add up
        return await newcomer.join("new@example.com")

    *_, joined = await asyncio.gather(*(blast(i, s) for i, s in enumerate(senders)), join_meanwhile())
    total = SENDERS * EACH

    # Every receiver sees ids 1..total in order, the same frames.
    reference = await read_ids(receivers[0], total, "new@example.com")
    assert [m["id"] for m in reference] == list(range(1, total + 1))
    assert all(m["type"] == "message" and set(m) == MESSAGE_KEYS for m in reference)
    for receiver in receivers[1:]:
        assert await read_ids(receiver, total, "new@example.com") == reference
    by_id = {m["id"]: m for m in reference}
    # Each sender's messages kept their order.
    for i in range(SENDERS):
        mine = [m["content"] for m in reference if m["sender"] == f"s{i}@example.com"]
        assert mine == [f"s{i}-{j}" for j in range(EACH)]

    # Each sender: its acks and the others' messages interleave, ids strictly
    # increasing with no gap; each ack names the message it sent.
    for i, sender in enumerate(senders):
        frames = await read_ids(sender, total, "new@example.com")
        assert [f["id"] for f in frames] == list(range(1, total + 1))
        acks = [f for f in frames if f["type"] == "sent"]
        assert [a["ref"] for a in acks] == [f"{i}/{j}" for j in range(EACH)]
        for ack in acks:
            assert by_id[ack["id"]]["content"] == f"s{i}-{ack['ref'].split('/')[1]}"
            assert by_id[ack["id"]]["ts"] == ack["ts"]
        others = [f for f in frames if f["type"] != "sent"]
        assert others == [m for m in reference if m["sender"] != f"s{i}@example.com"]

    # Whoever joined meanwhile got a history and then the rest, live: no gap,
    # nothing twice.
    history = joined["history"]
    seen = history[-1]["id"] if history else 0
    assert history == reference[max(0, seen - 50) : seen]
    if seen < total:
        assert await newcomer.expect_many("message", total - seen, timeout=10) == reference[seen:]

    # A later newcomer's history is the last 50, in the same order.
    late = await connect("xhr-streaming")
    history = (await late.join("late@example.com"))["history"]
    assert history == reference[-50:]
