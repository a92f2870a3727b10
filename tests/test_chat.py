"""chatzilla.chat: the Roster's presence rules and the Message frames."""

from __future__ import annotations

import dataclasses

import pytest

from chatzilla.chat import Message, PresenceChange, Roster


class Conn:
    """An opaque connection key, as the hub passes them."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Conn({self.name})"


@pytest.fixture
def roster() -> Roster:
    return Roster()


# -- Roster ------------------------------------------------------------------


def test_empty_roster(roster):
    assert len(roster) == 0
    assert roster.participants() == []
    assert roster.connections() == []
    assert roster.email_of(Conn("x")) is None


def test_first_connection_of_an_email_is_a_join(roster):
    change = roster.add(Conn("a1"), "alice@example.com")
    assert change == PresenceChange("join", "alice@example.com", 1)
    assert len(roster) == 1


def test_second_tab_is_no_event(roster):
    roster.add(Conn("a1"), "alice@example.com")
    change = roster.add(Conn("a2"), "alice@example.com")
    assert change == PresenceChange(None, "alice@example.com", 1)
    assert roster.participants() == ["alice@example.com"]
    assert len(roster) == 1
    assert len(roster.connections()) == 2


def test_counts_are_distinct_emails(roster):
    assert roster.add(Conn("a1"), "alice@example.com").count == 1
    assert roster.add(Conn("b1"), "bob@example.com").count == 2
    assert roster.add(Conn("a2"), "alice@example.com").count == 2
    assert roster.add(Conn("c1"), "carol@example.com").count == 3
    assert len(roster) == 3


def test_leave_only_when_the_last_connection_goes(roster):
    a1, a2, b1 = Conn("a1"), Conn("a2"), Conn("b1")
    roster.add(a1, "alice@example.com")
    roster.add(a2, "alice@example.com")
    roster.add(b1, "bob@example.com")

    assert roster.remove(a1) == PresenceChange(None, "alice@example.com", 2)
    assert roster.participants() == ["alice@example.com", "bob@example.com"]

    assert roster.remove(a2) == PresenceChange("leave", "alice@example.com", 1)
    assert roster.participants() == ["bob@example.com"]

    assert roster.remove(b1) == PresenceChange("leave", "bob@example.com", 0)
    assert len(roster) == 0
    assert roster.connections() == []


def test_remove_is_idempotent(roster):
    a1, a2 = Conn("a1"), Conn("a2")
    roster.add(a1, "alice@example.com")
    roster.add(a2, "alice@example.com")
    assert roster.remove(a1).event is None
    assert roster.remove(a1) is None
    assert roster.remove(a1) is None
    # The second tab still counts, and its own removal is the one leave.
    assert roster.participants() == ["alice@example.com"]
    assert roster.remove(a2).event == "leave"
    assert roster.remove(a2) is None
    assert len(roster) == 0


def test_removing_an_unknown_connection_is_none(roster):
    roster.add(Conn("a1"), "alice@example.com")
    assert roster.remove(Conn("stranger")) is None
    assert roster.participants() == ["alice@example.com"]


def test_adding_the_same_connection_twice_is_refused(roster):
    a1 = Conn("a1")
    roster.add(a1, "alice@example.com")
    with pytest.raises(ValueError):
        roster.add(a1, "alice@example.com")
    with pytest.raises(ValueError):
        roster.add(a1, "other@example.com")
    assert roster.participants() == ["alice@example.com"]
    assert roster.connections() == [a1]


def test_participants_in_arrival_order_each_once(roster):
    roster.add(Conn("c1"), "carol@example.com")
    roster.add(Conn("a1"), "alice@example.com")
    roster.add(Conn("c2"), "carol@example.com")  # a second tab does not move carol
    roster.add(Conn("b1"), "bob@example.com")
    assert roster.participants() == ["carol@example.com", "alice@example.com", "bob@example.com"]


def test_someone_who_leaves_and_comes_back_arrives_last(roster):
    a1 = Conn("a1")
    roster.add(a1, "alice@example.com")
    roster.add(Conn("b1"), "bob@example.com")
    roster.remove(a1)
    assert roster.add(Conn("a2"), "alice@example.com") == PresenceChange("join", "alice@example.com", 2)
    assert roster.participants() == ["bob@example.com", "alice@example.com"]


def test_email_of_and_connections(roster):
    a1, b1 = Conn("a1"), Conn("b1")
    roster.add(a1, "alice@example.com")
    roster.add(b1, "bob@example.com")
    assert roster.email_of(a1) == "alice@example.com"
    assert roster.email_of(b1) == "bob@example.com"
    assert set(roster.connections()) == {a1, b1}
    roster.remove(a1)
    assert roster.email_of(a1) is None
    assert roster.connections() == [b1]


def test_participants_is_a_copy(roster):
    roster.add(Conn("a1"), "alice@example.com")
    roster.participants().append("mallory@example.com")
    roster.connections().clear()
    assert roster.participants() == ["alice@example.com"]
    assert len(roster.connections()) == 1


# -- PresenceChange ------------------------------------------------------------


def test_presence_frame_shape():
    assert PresenceChange("join", "bob@example.com", 2).frame() == {
        "type": "presence",
        "event": "join",
        "email": "bob@example.com",
        "count": 2,
    }
    assert PresenceChange("leave", "bob@example.com", 0).frame() == {
        "type": "presence",
        "event": "leave",
        "email": "bob@example.com",
        "count": 0,
    }


# -- Message -------------------------------------------------------------------


def test_message_frame_shape_exactly():
    message = Message(1, "bob@example.com", "hello this is bob", 1764240000.125, ref="b-1")
    # Everyone else's frame never carries the sender's ref.
    assert message.frame() == {
        "type": "message",
        "id": 1,
        "sender": "bob@example.com",
        "content": "hello this is bob",
        "ts": 1764240000.125,
    }


def test_ack_shape_with_ref():
    message = Message(1, "bob@example.com", "hello this is bob", 1764240000.125, ref="b-1")
    assert message.ack() == {"type": "sent", "ref": "b-1", "id": 1, "ts": 1764240000.125}


def test_ack_shape_without_ref_has_no_ref_key():
    message = Message(7, "bob@example.com", "hi", 1764240001.5)
    assert message.ack() == {"type": "sent", "id": 7, "ts": 1764240001.5}
    assert "ref" not in message.ack()


def test_ack_keeps_an_empty_ref():
    assert Message(1, "a@example.com", "hi", 1.0, ref="").ack()["ref"] == ""


def test_frame_and_ack_share_id_and_ts():
    message = Message(42, "a@example.com", "hi", 1764240002.25, ref="r")
    assert message.frame()["id"] == message.ack()["id"] == 42
    assert message.frame()["ts"] == message.ack()["ts"] == 1764240002.25


def test_message_is_immutable():
    message = Message(1, "a@example.com", "hi", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.content = "changed"  # type: ignore[misc]


def test_frames_are_fresh_dicts():
    message = Message(1, "a@example.com", "hi", 1.0, ref="r")
    message.frame()["content"] = "tampered"
    message.ack()["id"] = 99
    assert message.frame()["content"] == "hi"
    assert message.ack()["id"] == 1


# -- lingering: the presence grace period -----------------------------------


def test_a_lingering_person_is_present_with_no_connection(roster):
    a1 = Conn("a1")
    roster.add(a1, "alice@example.com")
    roster.add(Conn("b1"), "bob@example.com")
    assert roster.remove(a1, linger=True) == PresenceChange(None, "alice@example.com", 2)
    assert roster.lingering("alice@example.com")
    assert roster.participants() == ["alice@example.com", "bob@example.com"]
    assert roster.connections() == [roster.connections()[0]] and len(roster) == 2
    # Back with another connection: no event, and her place is kept.
    assert roster.add(Conn("a2"), "alice@example.com") == PresenceChange(None, "alice@example.com", 2)
    assert not roster.lingering("alice@example.com")
    assert roster.participants() == ["alice@example.com", "bob@example.com"]
    assert roster.expire("alice@example.com") is None  # not lingering: nothing


def test_a_lingering_person_leaves_when_the_grace_period_expires(roster):
    a1 = Conn("a1")
    roster.add(a1, "alice@example.com")
    roster.remove(a1, linger=True)
    assert roster.expire("alice@example.com") == PresenceChange("leave", "alice@example.com", 0)
    assert roster.expire("alice@example.com") is None
    assert roster.participants() == [] and not roster


def test_a_person_expected_back_lingers_until_they_come(roster):
    roster.linger("alice@example.com")
    roster.linger("alice@example.com")
    assert roster.participants() == ["alice@example.com"]
    assert roster.add(Conn("a1"), "alice@example.com").event is None
    roster.add(Conn("b1"), "bob@example.com")
    roster.linger("bob@example.com")  # connected: still so
    assert not roster.lingering("bob@example.com")
