"""A WebSocket caught closing while frames go out to it harms nobody.

Between reading a client's close frame (or its connection dropping) and the
stream's close callback, the server may still fan a message or a presence
frame out to that connection, whose writes then fail. The soak found it: the
failure escaped into the fan-out, so the others' copies, the sender's `sent`
and a newcomer's `joined` were lost. The test puts a connection in exactly
that state and carries on chatting.
"""

from __future__ import annotations

import logging

import pytest

from .helpers import say_and_check

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"


def _caught_closing(app, email: str) -> None:
    """Make the server side of ``email``'s WebSocket look as it does when the
    client's close frame has been read and the stream has not closed yet."""
    connection = next(c for c, member in app.hub._members.items() if member.email == email)
    connection.session.handler.ws_connection.client_terminated = True


@pytest.mark.parametrize("kind", ["websocket", "raw-websocket"])
@pytest.mark.gen_test
async def test_a_websocket_caught_closing_during_fan_out(app, connect, caplog, kind):
    """Nobody else loses a frame, and nothing is logged as an error."""
    closing = await connect(kind)
    await closing.join(ALICE)
    bob = await connect()
    await bob.join(BOB)
    carol = await connect("xhr-polling")
    await carol.join(CAROL)
    await bob.expect("presence")
    _caught_closing(app, ALICE)
    with caplog.at_level(logging.WARNING):
        await say_and_check(bob, [carol], "a message while alice is closing", ref="b1")
        # The failed write ends alice's session: she leaves, as she meant to.
        for other in (bob, carol):
            assert await other.expect("presence") == {
                "type": "presence",
                "event": "leave",
                "email": ALICE,
                "count": 2,
            }
        newcomer = await connect()
        joined = await newcomer.join("dave@example.com")
        assert sorted(joined["participants"]) == [BOB, CAROL, "dave@example.com"]
        for other in (bob, carol):
            assert (await other.expect("presence"))["email"] == "dave@example.com"
        await say_and_check(carol, [bob, newcomer], "and on it goes", ref="c1")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
