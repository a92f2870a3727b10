"""chatzilla.hub: the Hub with the real MemoryBackend and recording clients.

The hub talks to connections only through its ``Client`` protocol
(``send_text`` and ``close``); :class:`Recorder` implements it and keeps
everything it was given, decoded, for the assertions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging

import pytest

from chatzilla.backends.memory import MemoryBackend
from chatzilla.backends.retention import Retention
from chatzilla.hub import Hub
from chatzilla.limits import RateLimiter
from chatzilla.privacy import email_hash
from chatzilla.protocol import DEFAULT_ROOM as LOBBY
from chatzilla.protocol import ProtocolError, error_frame

T0 = 1764240000.0


class Recorder:
    """A connection as the hub sees it: records frames and close calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.texts: list[str] = []
        self.closes: list[tuple[int, str]] = []

    def send_text(self, text: str, requested: bool = False, crowd: bool = False) -> None:
        self.texts.append(text)

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def take(self) -> list[dict]:
        """The frames received since the last take, decoded."""
        frames = [json.loads(t) for t in self.texts]
        self.texts.clear()
        return frames

    def __repr__(self) -> str:
        return f"Recorder({self.name})"


class ClosingRecorder(Recorder):
    """Like the real connection: closing it tells the hub the connection ended."""

    def __init__(self, name: str, hub: Hub) -> None:
        super().__init__(name)
        self.hub = hub

    def close(self, code: int, reason: str) -> None:
        super().close(code, reason)
        self.hub.close(self)


class Chat:
    """A hub on a MemoryBackend with a deterministic clock, and helpers."""

    def __init__(
        self,
        history_limit: int = 50,
        max_content: int = 2000,
        keep: int | None = None,
        backend: MemoryBackend | None = None,
        max_rooms: int | None = None,
        messages: RateLimiter | None = None,
    ) -> None:
        self.ticks = itertools.count()
        #: The hub's monotonic clock (the typing throttle's); tests move it.
        self.now = 0.0
        self.backend = backend or MemoryBackend(
            Retention(messages=history_limit if keep is None else keep), clock=self.clock
        )
        self.hub = Hub(
            self.backend,
            history_limit=history_limit,
            max_content=max_content,
            max_rooms=max_rooms,
            messages=messages,
            clock=lambda: self.now,
        )

    def clock(self) -> float:
        return T0 + next(self.ticks) * 0.125

    def connect(self, name: str) -> Recorder:
        client = Recorder(name)
        self.hub.open(client)
        return client

    def join(self, client: Recorder, email: str) -> dict:
        asyncio.run(self.hub.join(client, email))
        frames = client.take()
        assert frames[0]["type"] == "joined", frames
        assert len(frames) == 1, frames
        return frames[0]

    def joined(self, name: str, email: str) -> Recorder:
        client = self.connect(name)
        self.join(client, email)
        return client

    def say(self, client: Recorder, content: str, ref: str | None = None) -> dict:
        """Say something; exactly one frame, the `sent` ack, comes back."""
        already = len(client.texts)
        asyncio.run(self.hub.say(client, content, ref))
        new = [json.loads(t) for t in client.texts[already:]]
        del client.texts[already:]
        assert [f["type"] for f in new] == ["sent"], new
        return new[0]

    def refused(self, code: str, coro) -> ProtocolError:
        with pytest.raises(ProtocolError) as info:
            asyncio.run(coro)
        assert info.value.code == code
        return info.value


@pytest.fixture
def chat() -> Chat:
    return Chat()


# -- join ----------------------------------------------------------------------


def test_first_join_gets_joined_with_only_itself(chat):
    alice = chat.connect("alice")
    assert chat.join(alice, "alice@example.com") == {
        "type": "joined",
        "email": "alice@example.com",
        "participants": ["alice@example.com"],
        "history": [],
    }


def test_joined_carries_the_normalized_email(chat):
    alice = chat.connect("alice")
    joined = chat.join(alice, "  Alice@Example.COM ")
    assert joined["email"] == "Alice@example.com"
    assert joined["participants"] == ["Alice@example.com"]


def test_second_join_lists_both_and_tells_only_the_others(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.connect("bob")
    assert chat.join(bob, "bob@example.com") == {
        "type": "joined",
        "email": "bob@example.com",
        "participants": ["alice@example.com", "bob@example.com"],
        "history": [],
    }
    assert alice.take() == [{"type": "presence", "event": "join", "email": "bob@example.com", "count": 2}]
    assert bob.take() == []  # no presence about oneself


def test_each_joined_lists_who_is_there_whoever_was_listed_before(chat):
    # The participants of a joined are encoded once for the joins that list
    # the same people; a change, or another room, lists its own.
    chat.joined("alice", "alice@example.com")
    chat.joined("bob", "bob@example.com")
    listed = [chat.join(chat.connect(f"bob{i}"), "bob@example.com")["participants"] for i in range(2)]
    assert listed == [["alice@example.com", "bob@example.com"]] * 2
    elsewhere = chat.connect("dave")
    asyncio.run(chat.hub.join(elsewhere, "dave@example.com", "kitchen"))
    assert elsewhere.take()[0]["participants"] == ["dave@example.com"]
    carol = chat.join(chat.connect("carol"), "carol@example.com")
    assert carol == {
        "type": "joined",
        "email": "carol@example.com",
        "participants": ["alice@example.com", "bob@example.com", "carol@example.com"],
        "history": [],
    }


def test_presence_goes_to_every_other_joined_connection_only(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    lurker = chat.connect("lurker")  # open, not joined
    alice.take()
    chat.joined("carol", "carol@example.com")
    expected = [{"type": "presence", "event": "join", "email": "carol@example.com", "count": 3}]
    assert alice.take() == expected
    assert bob.take() == expected
    assert lurker.take() == []


def test_second_tab_of_the_same_email_is_not_a_new_participant(chat):
    alice1 = chat.joined("alice1", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice1.take()
    alice2 = chat.connect("alice2")
    assert chat.join(alice2, "alice@EXAMPLE.com") == {
        "type": "joined",
        "email": "alice@example.com",
        "participants": ["alice@example.com", "bob@example.com"],
        "history": [],
    }
    assert alice1.take() == []
    assert bob.take() == []
    assert chat.hub.stats() == {"connections": 3, "participants": 2}


def test_already_joined(chat):
    alice = chat.joined("alice", "alice@example.com")
    chat.refused("already_joined", chat.hub.join(alice, "alice@example.com"))
    chat.refused("already_joined", chat.hub.join(alice, "other@example.com"))
    assert alice.take() == []
    assert chat.hub.stats() == {"connections": 1, "participants": 1}


def test_invalid_email_leaves_the_connection_unjoined(chat):
    alice = chat.connect("alice")
    bob = chat.joined("bob", "bob@example.com")
    chat.refused("invalid_email", chat.hub.join(alice, "not an address"))
    chat.refused("not_joined", chat.hub.say(alice, "hi", None))
    assert chat.hub.stats() == {"connections": 2, "participants": 1}
    assert bob.take() == []
    # It may try again with a good address.
    assert chat.join(alice, "alice@example.com")["participants"] == ["bob@example.com", "alice@example.com"]


# -- leave ---------------------------------------------------------------------


def test_leave_is_announced_when_the_last_tab_closes(chat):
    alice1 = chat.joined("alice1", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice1.take(), alice2.take()

    chat.hub.close(alice1)
    assert bob.take() == []
    assert alice2.take() == []

    chat.hub.close(alice2)
    assert bob.take() == [{"type": "presence", "event": "leave", "email": "alice@example.com", "count": 1}]
    assert alice1.take() == alice2.take() == []


def test_last_person_leaving_is_fine(chat):
    alice = chat.joined("alice", "alice@example.com")
    chat.hub.close(alice)
    assert chat.hub.stats() == {"connections": 0, "participants": 0}
    # The room starts afresh for the next one.
    bob = chat.connect("bob")
    assert chat.join(bob, "bob@example.com")["participants"] == ["bob@example.com"]


def test_close_is_idempotent(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice.take()
    chat.hub.close(bob)
    chat.hub.close(bob)
    chat.hub.close(bob)
    assert alice.take() == [{"type": "presence", "event": "leave", "email": "bob@example.com", "count": 1}]
    assert chat.hub.stats() == {"connections": 1, "participants": 1}


def test_close_of_unjoined_or_unknown_connections(chat):
    alice = chat.joined("alice", "alice@example.com")
    lurker = chat.connect("lurker")
    chat.hub.close(lurker)
    chat.hub.close(lurker)
    chat.hub.close(Recorder("never-opened"))
    assert alice.take() == []
    assert chat.hub.stats() == {"connections": 1, "participants": 1}


def test_closed_connection_gets_nothing_more(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    chat.hub.close(bob)
    chat.say(alice, "anyone?")
    chat.joined("carol", "carol@example.com")
    assert bob.take() == []
    chat.refused("not_joined", chat.hub.say(bob, "I am gone", None))


def test_participants_after_leave_and_return(chat):
    alice = chat.joined("alice", "alice@example.com")
    chat.joined("bob", "bob@example.com")
    chat.hub.close(alice)
    carol = chat.connect("carol")
    assert chat.join(carol, "carol@example.com")["participants"] == ["bob@example.com", "carol@example.com"]
    again = chat.connect("alice-again")
    assert chat.join(again, "alice@example.com")["participants"] == [
        "bob@example.com",
        "carol@example.com",
        "alice@example.com",
    ]


# -- messages ------------------------------------------------------------------


def test_message_fan_out(chat):
    alice1 = chat.joined("alice1", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    lurker = chat.connect("lurker")
    alice1.take(), alice2.take()

    sent = chat.say(alice1, "  hello everyone  ", "a-1")
    assert sent == {"type": "sent", "id": 1, "ts": T0, "ref": "a-1"}
    message = {
        "type": "message",
        "id": 1,
        "sender": "alice@example.com",
        "content": "hello everyone",
        "ts": T0,
    }
    assert bob.take() == [message]
    assert alice2.take() == [message]  # the sender's other tab does get it
    assert alice1.take() == []  # the sending connection only gets `sent`
    assert lurker.take() == []  # not joined, not in the chat


def test_ack_without_ref_has_no_ref(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    assert chat.say(alice, "hi") == {"type": "sent", "id": 1, "ts": T0}
    assert "ref" not in bob.take()[0]


def test_ref_is_never_relayed_to_others(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    chat.say(alice, "hi", "secret-ref")
    (frame,) = bob.take()
    assert "ref" not in frame
    assert "secret-ref" not in json.dumps(frame)


def test_ids_strictly_increase_and_ack_matches_the_message(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice.take()
    acks = []
    for i in range(5):
        speaker = alice if i % 2 == 0 else bob
        acks.append((speaker, chat.say(speaker, f"message {i}", f"r{i}")))
    ids = [ack["id"] for _, ack in acks]
    assert ids == [1, 2, 3, 4, 5]
    received = {c: {f["id"]: f for f in c.take()} for c in (alice, bob)}
    for speaker, ack in acks:
        listener = bob if speaker is alice else alice
        assert received[listener][ack["id"]]["ts"] == ack["ts"]
        assert ack["id"] not in received[speaker]


def test_message_text_is_relayed_as_is(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    content = '<script>alert("x")</script> & héllo ☃ \U0001f600\nsecond line'
    chat.say(alice, content)
    (text,) = bob.texts
    assert "☃" in text and "\\u" not in text  # unicode kept as text
    assert json.loads(text)["content"] == content


def test_messages_from_elsewhere_reach_everyone(chat):
    # A backend reports messages stored by other processes with origin None.
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice.take()
    message, _ = asyncio.run(chat.backend.append(LOBBY, "zed@example.com", "from afar", None, None))
    expected = [message.frame()]
    assert alice.take() == expected
    assert bob.take() == expected


# -- history -------------------------------------------------------------------


def test_history_is_sent_oldest_first(chat):
    alice = chat.joined("alice", "alice@example.com")
    chat.say(alice, "one", "r1")
    chat.say(alice, "two")
    bob = chat.connect("bob")
    assert chat.join(bob, "bob@example.com")["history"] == [
        {"type": "message", "id": 1, "sender": "alice@example.com", "content": "one", "ts": T0},
        {"type": "message", "id": 2, "sender": "alice@example.com", "content": "two", "ts": T0 + 0.125},
    ]


def test_history_is_capped_at_history_limit():
    chat = Chat(history_limit=3)
    alice = chat.joined("alice", "alice@example.com")
    for i in range(1, 8):
        chat.say(alice, f"m{i}")
    bob = chat.connect("bob")
    history = chat.join(bob, "bob@example.com")["history"]
    assert [m["content"] for m in history] == ["m5", "m6", "m7"]
    assert [m["id"] for m in history] == [5, 6, 7]


def test_history_limit_applies_even_if_the_backend_keeps_more():
    chat = Chat(history_limit=2, keep=100)
    alice = chat.joined("alice", "alice@example.com")
    for i in range(1, 6):
        chat.say(alice, f"m{i}")
    bob = chat.connect("bob")
    assert [m["id"] for m in chat.join(bob, "bob@example.com")["history"]] == [4, 5]


def test_history_survives_everyone_leaving(chat):
    alice = chat.joined("alice", "alice@example.com")
    chat.say(alice, "still here later")
    chat.hub.close(alice)
    bob = chat.connect("bob")
    history = chat.join(bob, "bob@example.com")["history"]
    assert [m["content"] for m in history] == ["still here later"]
    # And ids go on growing.
    assert chat.say(bob, "next")["id"] == 2


# -- errors --------------------------------------------------------------------


def test_not_joined_carries_ref(chat):
    lurker = chat.connect("lurker")
    error = chat.refused("not_joined", chat.hub.say(lurker, "hi", "n-1"))
    assert error.ref == "n-1"
    assert error_frame(error) == {"type": "error", "code": "not_joined", "reason": error.reason, "ref": "n-1"}


def test_not_joined_without_ref(chat):
    error = chat.refused("not_joined", chat.hub.say(chat.connect("lurker"), "hi", None))
    assert error.ref is None
    assert "ref" not in error_frame(error)


@pytest.mark.parametrize("content", ["", "   ", "\n\t "])
def test_empty_message_carries_ref(chat, content):
    alice = chat.joined("alice", "alice@example.com")
    assert chat.refused("empty", chat.hub.say(alice, content, "e-1")).ref == "e-1"


def test_too_long_at_limit_plus_one_but_not_at_limit():
    chat = Chat(max_content=10)
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice.take()
    error = chat.refused("too_long", chat.hub.say(alice, "x" * 11, "t-1"))
    assert error.ref == "t-1"
    assert bob.take() == []
    assert chat.say(alice, " " + "x" * 10 + " ", "t-2") == {"type": "sent", "id": 1, "ts": T0, "ref": "t-2"}
    assert [f["content"] for f in bob.take()] == ["x" * 10]


def test_refused_messages_are_neither_stored_nor_relayed(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice.take()
    chat.refused("empty", chat.hub.say(alice, "  ", None))
    chat.refused("too_long", chat.hub.say(alice, "x" * 2001, None))
    assert bob.take() == []
    assert alice.take() == []
    assert chat.say(alice, "first real one")["id"] == 1
    carol = chat.connect("carol")
    assert [m["content"] for m in chat.join(carol, "carol@example.com")["history"]] == ["first real one"]


# -- close_all and stats ---------------------------------------------------------


def test_close_all_closes_every_open_connection(chat):
    alice = chat.joined("alice", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")
    lurker = chat.connect("lurker")
    chat.hub.close_all(3001, "Server shutting down")
    for client in (alice, alice2, lurker):
        assert client.closes == [(3001, "Server shutting down")]


def test_close_all_skips_connections_already_closed(chat):
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    chat.hub.close(bob)
    chat.hub.close_all(3001, "Server shutting down")
    assert alice.closes == [(3001, "Server shutting down")]
    assert bob.closes == []


def test_close_all_when_closing_calls_back_into_the_hub(chat):
    # The real connection reports its end to the hub from inside close().
    clients = [ClosingRecorder(f"c{i}", chat.hub) for i in range(4)]
    for i, client in enumerate(clients):
        chat.hub.open(client)
        asyncio.run(chat.hub.join(client, f"user{i % 3}@example.com"))
    chat.hub.close_all(3001, "Server shutting down")
    assert all(c.closes == [(3001, "Server shutting down")] for c in clients)
    assert chat.hub.stats() == {"connections": 0, "participants": 0}


def test_close_all_with_nobody(chat):
    chat.hub.close_all(3001, "Server shutting down")
    assert chat.hub.stats() == {"connections": 0, "participants": 0}


def test_stats_counts_connections_and_distinct_participants(chat):
    assert chat.hub.stats() == {"connections": 0, "participants": 0}
    lurker = chat.connect("lurker")
    assert chat.hub.stats() == {"connections": 1, "participants": 0}
    alice1 = chat.joined("alice1", "alice@example.com")
    chat.joined("alice2", "alice@example.com")
    assert chat.hub.stats() == {"connections": 3, "participants": 1}
    chat.joined("bob", "bob@example.com")
    assert chat.hub.stats() == {"connections": 4, "participants": 2}
    chat.hub.close(alice1)
    assert chat.hub.stats() == {"connections": 3, "participants": 2}
    chat.hub.close(lurker)
    assert chat.hub.stats() == {"connections": 2, "participants": 2}


# -- joins racing with messages (history read takes time) -------------------------


class GatedBackend(MemoryBackend):
    """The real MemoryBackend whose next history read waits for a gate, as a
    networked backend's would; ``before`` picks whether the snapshot is taken
    before or after the wait."""

    def __init__(self, keep: int, clock, before: bool) -> None:
        super().__init__(Retention(messages=keep), clock)
        self.before = before
        self._pending: tuple[asyncio.Event, asyncio.Event] | None = None

    def hold_next_read(self) -> tuple[asyncio.Event, asyncio.Event]:
        """(reading, gate): ``reading`` is set once the read started; it
        finishes when ``gate`` is set."""
        self._pending = (asyncio.Event(), asyncio.Event())
        return self._pending

    async def page(self, room: str, after, before, limit: int):
        pending, self._pending = self._pending, None
        if pending is None:
            return await super().page(room, after, before, limit)
        reading, gate = pending
        snapshot = await super().page(room, after, before, limit) if self.before else None
        reading.set()
        await gate.wait()
        return snapshot if self.before else await super().page(room, after, before, limit)


def gated_chat(before: bool) -> Chat:
    chat = Chat()
    chat.backend = GatedBackend(50, chat.clock, before)
    chat.hub = Hub(chat.backend, history_limit=50, max_content=2000)
    return chat


def run_scenario(coro) -> None:
    """Run a racing scenario; a hang fails the test instead of blocking the run."""

    async def bounded():
        await asyncio.wait_for(coro, 5)

    asyncio.run(bounded())


@pytest.mark.parametrize("before", [True, False], ids=["snapshot-before", "snapshot-after"])
def test_message_during_join_is_seen_exactly_once_after_joined(before):
    chat = gated_chat(before)
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.connect("bob")

    async def scenario():
        reading, gate = chat.backend.hold_next_read()
        join = asyncio.ensure_future(chat.hub.join(bob, "bob@example.com"))
        await reading.wait()
        await chat.hub.say(alice, "during the join", None)
        assert bob.texts == []  # nothing before `joined`
        gate.set()
        await join

    run_scenario(scenario())
    frames = bob.take()
    assert frames[0]["type"] == "joined"
    seen = [m["id"] for m in frames[0]["history"]] + [f["id"] for f in frames[1:] if f["type"] == "message"]
    assert seen == [1]
    # Read before the message: it follows `joined`; read after: history has it.
    assert len(frames) == (2 if before else 1)


@pytest.mark.parametrize("before", [True, False], ids=["snapshot-before", "snapshot-after"])
def test_joins_of_one_turn_share_one_history_read_and_miss_nothing(before):
    chat = gated_chat(before)
    alice = chat.joined("alice", "alice@example.com")
    chat.say(alice, "before the crowd")
    crowd = [chat.connect(f"tab{n}") for n in range(5)]

    async def scenario():
        reading, gate = chat.backend.hold_next_read()  # only the next read waits
        joins = [
            asyncio.ensure_future(chat.hub.join(c, f"p{n % 2}@example.com")) for n, c in enumerate(crowd)
        ]
        await reading.wait()
        await chat.hub.say(alice, "during the joins", None)
        # Every join waits for that one read: none has its `joined` yet.
        assert all(c.texts == [] for c in crowd)
        gate.set()
        await asyncio.gather(*joins)

    run_scenario(scenario())
    for client in crowd:
        frames = client.take()
        assert frames[0]["type"] == "joined"
        seen = [m["id"] for m in frames[0]["history"]] + [
            f["id"] for f in frames[1:] if f["type"] == "message"
        ]
        assert seen == [1, 2]


def test_presence_during_join_comes_after_joined():
    chat = gated_chat(before=True)
    chat.joined("alice", "alice@example.com")
    bob = chat.connect("bob")

    async def scenario():
        reading, gate = chat.backend.hold_next_read()
        join = asyncio.ensure_future(chat.hub.join(bob, "bob@example.com"))
        await reading.wait()
        carol = chat.connect("carol")
        # Carol is present at once; her history comes with the room's next
        # read, after Bob's (joins of a room share reads: see Hub._newest).
        carol_join = asyncio.ensure_future(chat.hub.join(carol, "carol@example.com"))
        while chat.hub.stats()["participants"] < 3:
            await asyncio.sleep(0)
        assert bob.texts == []
        gate.set()
        await join
        await carol_join
        assert carol.take()[0]["type"] == "joined"

    run_scenario(scenario())
    frames = bob.take()
    assert [f["type"] for f in frames] == ["joined", "presence"]
    assert frames[0]["participants"] == ["alice@example.com", "bob@example.com"]
    assert frames[1] == {"type": "presence", "event": "join", "email": "carol@example.com", "count": 3}


def test_connection_ending_during_join_gets_nothing():
    chat = gated_chat(before=False)
    alice = chat.joined("alice", "alice@example.com")
    bob = chat.connect("bob")

    async def scenario():
        reading, gate = chat.backend.hold_next_read()
        join = asyncio.ensure_future(chat.hub.join(bob, "bob@example.com"))
        await reading.wait()
        chat.hub.close(bob)
        gate.set()
        await join

    run_scenario(scenario())
    assert bob.texts == []
    assert [(f["event"], f["email"]) for f in alice.take()] == [
        ("join", "bob@example.com"),
        ("leave", "bob@example.com"),
    ]
    assert chat.hub.stats() == {"connections": 1, "participants": 1}


# -- logging ---------------------------------------------------------------------


def test_join_and_leave_are_logged_once_and_content_never(chat, caplog):
    caplog.set_level(logging.DEBUG, logger="chatzilla")
    alice1 = chat.joined("alice1", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")
    chat.say(alice1, "zebra-quartz-7731 is the secret", "ref-xyzzy")
    chat.hub.close(alice1)
    chat.hub.close(alice2)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    # At DEBUG the hash comes with the address (INFO has the hash alone).
    who = f"{email_hash('alice@example.com')} <alice@example.com>"
    assert len([m for m in infos if m.startswith(f"join {who}")]) == 1
    assert len([m for m in infos if m.startswith(f"leave {who}")]) == 1
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "zebra-quartz-7731" not in everything


# -- limits --------------------------------------------------------------------


def test_messages_are_limited_per_email_across_its_connections():
    now = [0.0]
    chat = Chat(messages=RateLimiter(rate=1, burst=3, clock=lambda: now[0]))
    tab1 = chat.joined("tab1", "alice@example.com")
    tab2 = chat.joined("tab2", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    chat.say(tab1, "one")
    chat.say(tab2, "two")
    chat.say(tab1, "three")
    bob.take()
    tab1.take()
    tab2.take()
    error = chat.refused("rate_limited", chat.hub.say(tab2, "four", "r4"))
    assert error.ref == "r4"
    assert error.retry_after == pytest.approx(1.0)
    assert error_frame(error) == {
        "type": "error",
        "code": "rate_limited",
        "reason": error.reason,
        "ref": "r4",
        "retry_after": 1.0,
    }
    assert bob.take() == [] and tab1.take() == []  # nothing relayed...
    assert [m.content for m in asyncio.run(chat.backend.page(LOBBY, None, None, 10))] == [
        "one",
        "two",
        "three",
    ]  # ...or stored
    chat.say(bob, "bob has a bucket of his own")
    now[0] = 1.0
    chat.say(tab2, "four, a second later")


def test_rooms_per_process_are_limited():
    chat = Chat(max_rooms=2)
    in_lobby = chat.joined("a", "a@example.com")
    asyncio.run(chat.hub.join(chat.connect("b"), "b@example.com", "dev"))
    third = chat.connect("c")
    error = chat.refused("too_many_rooms", chat.hub.join(third, "c@example.com", "ops"))
    assert "2 rooms" in error.reason
    asyncio.run(chat.hub.join(third, "c@example.com", "dev"))  # an existing room is fine
    assert third.take()[0]["type"] == "joined"
    chat.hub.close(in_lobby)  # a room is given back when its last person leaves
    asyncio.run(chat.hub.join(chat.connect("d"), "d@example.com", "ops"))


# -- typing --------------------------------------------------------------------


def typing(email: str) -> dict:
    return {"type": "typing", "email": email}


class LaneRecorder(Recorder):
    """Records, with each frame, whether it came as one of a room's fan-out
    (``crowd``: it may wait behind frames for one connection)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lanes: list[tuple[str, bool]] = []

    def send_text(self, text: str, requested: bool = False, crowd: bool = False) -> None:
        super().send_text(text, requested, crowd)
        self.lanes.append((json.loads(text)["type"], crowd))


def test_what_goes_to_a_whole_room_waits_behind_answers_to_one(chat):
    """Messages, presence, typing and changes to a whole room go out as a
    crowd's (the outbox writes them after the frames of one connection, such
    as an acknowledgement: tested in test_outbox); a connection's own
    answers do not. Before, presence and typing went as one connection's:
    an acknowledgement woken in the same turn as a presence fan-out to
    10,000 waited for all of it."""
    alice, bob = LaneRecorder("alice"), LaneRecorder("bob")
    for client, email in ((alice, "alice@example.com"), (bob, "bob@example.com")):
        chat.hub.open(client)
        asyncio.run(chat.hub.join(client, email))
    chat.say(alice, "hello", "r1")
    chat.now += 10
    chat.hub.typing(bob)
    asyncio.run(chat.hub.edit(alice, 1, "hello, edited", "e1"))
    # The edit's news to the room, then its answer to the editor (with its ref).
    assert alice.lanes == [
        ("joined", False), ("presence", True), ("sent", False), ("typing", True),
        ("changed", True), ("changed", False),
    ]  # fmt: skip
    assert json.loads(alice.texts[-1])["ref"] == "e1"
    assert [lane for lane in bob.lanes if lane[0] != "joined"] == [
        ("message", True), ("changed", True)
    ]  # fmt: skip


def test_typing_goes_to_the_others_in_the_room_only(chat):
    alice1 = chat.joined("alice1", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")  # her other tab
    bob = chat.joined("bob", "bob@example.com")
    carol = chat.joined("carol", "carol@example.com")
    elsewhere = chat.connect("dave")
    asyncio.run(chat.hub.join(elsewhere, "dave@example.com", "dev"))
    lurker = chat.connect("lurker")
    for client in (alice1, alice2, bob, carol, elsewhere, lurker):
        client.take()

    chat.hub.typing(alice1)
    assert bob.take() == carol.take() == [typing("alice@example.com")]
    # Not to herself, not even in her other tab; not to another room, nor
    # to a connection that has not joined.
    assert alice1.take() == alice2.take() == elsewhere.take() == lurker.take() == []


def test_typing_is_relayed_at_most_once_per_interval_per_connection(chat):
    alice1 = chat.joined("alice1", "alice@example.com")
    alice2 = chat.joined("alice2", "alice@example.com")
    bob = chat.joined("bob", "bob@example.com")
    alice1.take()
    alice2.take()

    chat.hub.typing(alice1)
    chat.now = 1.9
    chat.hub.typing(alice1)  # dropped, and no error either
    assert bob.take() == [typing("alice@example.com")]
    assert alice1.take() == []
    chat.hub.typing(alice2)  # each connection has its own budget
    assert bob.take() == [typing("alice@example.com")]
    chat.now = 2.0
    chat.hub.typing(alice1)
    chat.hub.typing(bob)
    assert bob.take() == [typing("alice@example.com")]
    assert alice1.take() == alice2.take() == [typing("bob@example.com")]


def test_typing_interval_is_a_parameter():
    now = [0.0]
    hub = Hub(
        MemoryBackend(Retention(messages=10)),
        history_limit=10,
        max_content=100,
        typing_interval=0.5,
        clock=lambda: now[0],
    )
    alice, bob = Recorder("alice"), Recorder("bob")
    for client, email in ((alice, "alice@example.com"), (bob, "bob@example.com")):
        hub.open(client)
        asyncio.run(hub.join(client, email))
    bob.take()
    hub.typing(alice)
    hub.typing(alice)
    now[0] = 0.5
    hub.typing(alice)
    assert bob.take() == [typing("alice@example.com")] * 2


def test_typing_before_join_is_not_joined(chat):
    lurker = chat.connect("lurker")
    bob = chat.joined("bob", "bob@example.com")
    with pytest.raises(ProtocolError) as info:
        chat.hub.typing(lurker)
    assert (info.value.code, info.value.ref) == ("not_joined", None)
    assert bob.take() == [] and lurker.take() == []


def test_a_closed_connection_leaves_no_typing_budget_behind(chat):
    bob = chat.joined("bob", "bob@example.com")
    for i in range(100):
        alice = chat.joined(f"alice{i}", f"alice{i}@example.com")
        chat.hub.typing(alice)
        chat.hub.close(alice)
    assert len(chat.hub._typing) == 0
    assert [f["type"] for f in bob.take()].count("typing") == 100
