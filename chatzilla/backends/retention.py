"""Which old messages a room keeps: the same rule for every backend. No I/O.

By default a backend keeps every acknowledged message for good. A
:class:`Retention` removes old ones on purpose: those older than ``days``
and those past the newest ``messages`` of their room. Each backend applies
it every :data:`PRUNE_EVERY` seconds (and at start) and remembers, per room,
the lowest id it kept (``first``): what lies below was removed, which the hub
reports to clients as ``truncated``. Ids stay contiguous otherwise (a failed
append uses none), so a gap below a page always means retention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

#: Seconds between two passes of pruning.
PRUNE_EVERY = 60.0
#: Most messages removed in one transaction (SQLite): a pass that has a
#: month of a busy room to remove does it in steps, never holding the
#: writer (and the messages waiting behind it) for long.
PRUNE_BATCH = 5000


@dataclasses.dataclass(frozen=True)
class Retention:
    """Keep messages for ``days`` (0: forever) and at most the newest
    ``messages`` of each room (0: all)."""

    days: float = 0.0
    messages: int = 0

    @property
    def keeps_all(self) -> bool:
        return not self.days and not self.messages

    def first_kept(self, first: int, last: int, now: float, ts_at: Callable[[int], float]) -> int:
        """The lowest id a room whose messages are ``first``..``last`` keeps
        at ``now`` (``last + 1`` when it keeps none). ``ts_at(id)`` is the time
        of a message in that range. Its times grow with its ids, so the cut
        by age is found by bisection: O(log n) look-ups, whatever the room holds."""
        keep = first
        if self.messages:
            keep = max(keep, last - self.messages + 1)
        if self.days:
            cutoff = now - self.days * 86400.0
            lo, hi = keep, last + 1  # the answer is in [lo, hi]
            while lo < hi:
                mid = (lo + hi) // 2
                if ts_at(mid) < cutoff:
                    lo = mid + 1
                else:
                    hi = mid
            keep = lo
        return keep


#: Every message kept for good: the default.
KEEP_ALL = Retention()


def truncated(first: int, last: int, lower: int, upper: int | None) -> bool:
    """Whether retention removed any message a client asked for: ids in
    ``lower < id < upper`` (``upper`` None: no bound) that the room had
    (``id <= last``) and no longer keeps (``id < first``)."""
    top = last + 1 if upper is None else min(upper, last + 1)
    return lower + 1 < min(first, top)
