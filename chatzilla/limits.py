"""Flood control: token buckets, one per connection, e-mail or address. No I/O.

A :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate`` a
second; each frame it guards takes one. A :class:`RateLimiter` keeps one
bucket per key (an e-mail, a client address, a connection) and
forgets buckets that have filled up again, since a new one would be the same:
its memory follows the keys that were busy lately, not every key ever seen.
The clock is passed in, so tests need no sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst``; starts full."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens and return 0.0; or, when there are not that
        many, take nothing and return the seconds until there will be."""
        self._refill(now)
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self.rate

    def full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.burst


class RateLimiter:
    """A :class:`TokenBucket` per key; ``rate`` 0 means no limit at all.

    ``clock`` is monotonic seconds (:func:`time.monotonic` unless a test
    passes its own).
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._sweep_at = 64  # sweep full buckets when there are this many

    def take(self, key: Hashable, cost: float = 1.0) -> float:
        """0.0 when ``key`` may go ahead (a token is taken), else the seconds
        it has to wait (nothing is taken)."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now, cost)

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s bucket (its owner is gone); safe to call twice."""
        self._buckets.pop(key, None)

    def _sweep(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        # Amortized: the next sweep waits until the busy keys have doubled.
        self._sweep_at = max(64, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


def flood_limiter(rate: float, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
    """The ``rate_limit`` setting's limiter: ``rate`` a second, in bursts of
    twice as many (at least one); ``rate`` 0 means no limit."""
    return RateLimiter(rate, max(1.0, 2 * rate), clock)
