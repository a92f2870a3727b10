"""The outbox writes a crowd's frames a slice at a time (chatzilla.outbox).

No server: connections are recorders, and the loop is a list of the
callbacks the outbox scheduled, run one at a time as the loop would.
"""

from __future__ import annotations

from chatzilla.outbox import Outbox


class Recorder:
    """A connection as the outbox sees it: notes when it was written to."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush(self, cache: dict) -> None:
        self.log.append(self.name)


def test_a_crowd_is_written_a_slice_at_a_time_each_connection_once():
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    for n in range(10):
        outbox.wake(Recorder(f"c{n}", written))
    assert len(scheduled) == 1
    scheduled.pop(0)()
    assert written == ["c0", "c1", "c2", "c3"]
    assert len(scheduled) == 1  # the rest comes at the loop's next turn
    while scheduled:
        scheduled.pop(0)()
    assert written == [f"c{n}" for n in range(10)]


def test_a_sender_woken_during_a_fan_out_goes_ahead_of_the_rest_of_it():
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    for n in range(10):
        outbox.wake(Recorder(f"c{n}", written))
    scheduled.pop(0)()
    outbox.wake(Recorder("sender", written))  # its acknowledgement, meanwhile
    assert len(scheduled) == 1  # still one flush at a time
    scheduled.pop(0)()
    assert written[4] == "sender"
    while scheduled:
        scheduled.pop(0)()
    assert sorted(written) == sorted([f"c{n}" for n in range(10)] + ["sender"])


def test_those_waiting_longest_are_written_however_many_keep_coming():
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    for n in range(8):
        outbox.wake(Recorder(f"old{n}", written))
    scheduled.pop(0)()
    for turn in range(10):
        # Every turn, a whole slice of newly woken connections.
        for n in range(4):
            outbox.wake(Recorder(f"new{turn}.{n}", written))
        scheduled.pop(0)()
    assert {f"old{n}" for n in range(8)} <= set(written)
