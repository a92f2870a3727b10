"""chatzilla.limits: token buckets on a clock the test moves by hand."""

from __future__ import annotations

import pytest

from chatzilla.limits import RateLimiter, TokenBucket

from .helpers import Clock


def test_a_bucket_starts_full_and_allows_a_burst():
    bucket = TokenBucket(rate=5, burst=10, now=0.0)
    assert [bucket.take(0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.take(0.0) == pytest.approx(0.2)  # one token comes back in 1/5 s


def test_a_refused_take_takes_nothing():
    bucket = TokenBucket(rate=5, burst=10, now=0.0)
    for _ in range(10):
        bucket.take(0.0)
    for _ in range(100):
        assert bucket.take(0.1) == pytest.approx(0.1)
    assert bucket.take(0.2) == 0.0  # refusals cost nothing, so the wait did not grow


def test_tokens_come_back_at_the_rate_and_never_past_the_burst():
    bucket = TokenBucket(rate=5, burst=10, now=0.0)
    for _ in range(10):
        bucket.take(0.0)
    assert bucket.take(1.0) == 0.0  # 5 tokens came back in 1 s
    assert [bucket.take(1.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(1.0) > 0
    assert not bucket.full(1.0)
    assert bucket.full(1000.0)
    assert [bucket.take(1000.0) for _ in range(10)] == [0.0] * 10  # capped at 10
    assert bucket.take(1000.0) > 0


def test_sustained_rate_is_the_rate():
    bucket = TokenBucket(rate=5, burst=10, now=0.0)
    allowed = sum(bucket.take(t / 100) == 0.0 for t in range(1000))  # 100 a second for 10 s
    assert allowed == pytest.approx(10 + 5 * 10, abs=1)


def test_a_clock_going_backwards_gives_nothing_back():
    bucket = TokenBucket(rate=5, burst=1, now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) > 0


def test_a_cost_larger_than_one():
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert bucket.take(0.0, cost=3) == 0.0
    assert bucket.take(0.0, cost=2) == pytest.approx(2.0)


@pytest.mark.parametrize("rate, burst", [(0, 10), (-1, 10), (5, 0.5)])
def test_a_bucket_refuses_a_shape_that_cannot_work(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, 0.0)


def test_the_limiter_keeps_one_bucket_per_key():
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=2, clock=clock)
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") == 0.0
    assert limiter.take("alice") == pytest.approx(0.2)
    assert limiter.take("bob") == 0.0  # bob has a bucket of his own
    clock.now += 0.2
    assert limiter.take("alice") == 0.0


def test_rate_zero_turns_the_limit_off():
    limiter = RateLimiter(rate=0, burst=0, clock=Clock())
    assert all(limiter.take("alice") == 0.0 for _ in range(10_000))
    assert len(limiter) == 0


def test_forget_drops_a_bucket_and_is_idempotent():
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    limiter.take("alice")
    assert limiter.take("alice") > 0
    limiter.forget("alice")
    limiter.forget("alice")
    assert limiter.take("alice") == 0.0


def test_buckets_that_filled_up_again_are_forgotten():
    """An attacker cycling through keys cannot grow the limiter without bound."""
    clock = Clock()
    limiter = RateLimiter(rate=5, burst=10, clock=clock)
    for i in range(10_000):
        limiter.take(f"user{i}@example.com")
        clock.now += 0.01
    # Each bucket is full again 0.2 s after its only take: at most the keys of
    # the last 0.2 s (20) survive a sweep, and sweeps come when the count doubles.
    assert len(limiter) <= 128


def test_a_busy_key_survives_the_sweep():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    limiter.take("flooder")
    limiter.take("flooder")
    for i in range(500):
        limiter.take(i)
    assert limiter.take("flooder") > 0  # its empty bucket was kept, not reset
