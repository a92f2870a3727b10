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


class Taker(Recorder):
    """A connection that keeps its frames where Outbox.add puts them, and
    notes what it writes when flushed (nothing, when nothing waits)."""

    outbox_frames: str | list[str] | None = None
    outbox_crowd = False

    def flush(self, cache: dict) -> None:
        waiting, self.outbox_frames = self.outbox_frames, None
        if waiting is not None:
            texts = [waiting] if isinstance(waiting, str) else waiting
            self.log.append(f"{self.name}: {' '.join(texts)}")


def run(scheduled: list) -> None:
    """The loop's turns until the outbox has nothing more scheduled."""
    while scheduled:
        scheduled.pop(0)()


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


def test_one_connection_woken_after_a_crowd_in_the_same_turn_goes_ahead_of_it():
    # A probe's acknowledgement, stored in the same turn as a message to a
    # room of ten: it does not wait behind the ten.
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    crowd = [Taker(f"c{n}", written) for n in range(10)]
    for c in crowd:
        outbox.add(c, "m1", crowd=True)
    outbox.add(Taker("probe", written), "sent")
    scheduled.pop(0)()
    assert written[0] == "probe: sent"
    run(scheduled)
    assert written[1:] == [f"c{n}: m1" for n in range(10)]


def test_a_crowd_waits_behind_the_crowd_before_it():
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    first = [Taker(f"a{n}", written) for n in range(6)]
    second = [Taker(f"b{n}", written) for n in range(6)]
    for c in first:
        outbox.add(c, "m1", crowd=True)
    scheduled.pop(0)()
    for c in second:
        outbox.add(c, "m2", crowd=True)
    run(scheduled)
    assert written == [f"a{n}: m1" for n in range(6)] + [f"b{n}: m2" for n in range(6)]


def test_a_frame_of_its_own_takes_what_waits_behind_a_crowd_ahead_in_order():
    # A sender in the room: the last message's copy waits for its turn in
    # the crowd when its acknowledgement comes; both go out together, in
    # the order they came, and its place in the crowd then writes nothing.
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    crowd = [Taker(f"c{n}", written) for n in range(10)]
    sender = crowd[-1]
    for c in crowd:
        outbox.add(c, "m1", crowd=True)
    outbox.add(sender, "m2", crowd=True)  # more of the crowd's, still behind it
    outbox.add(sender, "sent")
    scheduled.pop(0)()
    assert written[0] == "c9: m1 m2 sent"
    run(scheduled)
    assert written[1:] == [f"c{n}: m1" for n in range(9)]  # c9 once only


def test_frames_of_its_own_wake_a_connection_once():
    scheduled: list = []
    written: list[str] = []
    outbox = Outbox(scheduled.append, slice_=4)
    one = Taker("one", written)
    for text in ("a", "b", "c"):
        outbox.add(one, text)
    outbox.add(one, "d", crowd=True)
    run(scheduled)
    assert written == ["one: a b c d"]
