"""Reactions piled on one message by one hostile client, over a real server
(``--auth open``, where anyone joins under any address): however many
people react, a message stays a bounded frame, so the room stays joinable
and a reaction does not send the room megabytes. Flood control is off here
to be quick; with it on, 50 connections from one address take seconds."""

from __future__ import annotations

import pytest

from chatzilla import protocol

from .conftest import make_settings

EMOJI = "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗"

#: The longest address the rules allow, of characters escaped to 6 bytes each
#: on the wire: one reaction adds some 1.5 KB to the message's frame.
LOCAL = "日" * 230


@pytest.fixture
def settings():
    return make_settings(rate_limit=0.0, max_connections_per_address=1000)


@pytest.mark.gen_test(timeout=120)
async def test_reactions_keep_a_message_a_bounded_frame_and_the_room_joinable(connect):
    alice = await connect()
    await alice.send({"type": "join", "email": "alice@example.com", "room": "vote"})
    await alice.expect("joined")
    sent = await alice.say("vote here")
    attacker = await connect()
    refused = 0
    largest = 0
    for n in range(100):
        await attacker.send({"type": "join", "email": f"{LOCAL}{n}@example.com", "room": "vote"})
        await attacker.expect("joined")
        for emoji in EMOJI:
            await attacker.send({"type": "react", "id": sent["id"], "emoji": emoji, "ref": "r"})
            while (answer := await attacker.recv()).get("ref") != "r":
                assert answer["type"] != "_close", (n, answer, largest)
            if answer["type"] == "error":
                assert answer["code"] == "too_many_reactions", answer
                refused += 1
            else:
                live = {name: value for name, value in answer.items() if name != "ref"}
                largest = max(largest, protocol.wire_size(protocol.encode(live)))
        await attacker.send({"type": "leave"})
    assert refused, "never refused"
    assert largest <= protocol.MAX_MESSAGE_BYTES, largest
    # The room is still joinable, its history as bounded as ever.
    carol = await connect()
    await carol.send({"type": "join", "email": "carol@example.com", "room": "vote"})
    joined = await carol.expect("joined")
    assert joined["history"][-1]["id"] == sent["id"]
