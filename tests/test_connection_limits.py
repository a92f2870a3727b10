"""chatzilla.connection_limits: the per-connection and per-address limits,
without sockjs or a server, on a clock the test moves by hand."""

from __future__ import annotations

from chatzilla.connection_limits import IGNORED_BURST, PACKET_FACTOR, ConnectionLimits
from chatzilla.settings import Settings

from .helpers import Clock


def limits(clock: Clock | None = None, **overrides) -> ConnectionLimits:
    settings = Settings(
        **{
            "rate_limit": 2.0,
            "max_connections_per_address": 3,
            "max_frame": 100,
            "max_queued": 1000,
            **overrides,
        }
    )
    return ConnectionLimits(settings, clock or Clock())


def test_the_sizes_come_from_the_settings():
    limit = limits()
    assert (limit.max_frame, limit.max_packet, limit.max_queued) == (100, PACKET_FACTOR * 100, 1000)


def test_connections_per_address_are_counted_until_they_close():
    limit = limits()
    a, b, c, d = object(), object(), object(), object()
    assert [limit.open("10.0.0.1") for _ in (a, b, c)] == [True, True, True]
    assert limit.open("10.0.0.1") is False  # a fourth: refused, not counted
    assert limit.open_from("10.0.0.1") == 3
    assert limit.open("10.0.0.2") is True  # another address has its own count
    limit.close(a, "10.0.0.1")
    assert limit.open_from("10.0.0.1") == 2
    assert limit.open("10.0.0.1") is True
    limit.close(d, None)  # never counted (refused): nothing to uncount
    assert limit.open_from("10.0.0.1") == 3


def test_an_address_is_forgotten_when_its_last_connection_closes():
    limit = limits()
    conn = object()
    limit.open("10.0.0.1")
    limit.close(conn, "10.0.0.1")
    assert limit.open_from("10.0.0.1") == 0


def test_frames_per_connection_in_bursts_of_twice_the_rate():
    clock = Clock()
    limit = limits(clock)
    conn, other = object(), object()
    assert [limit.frame(conn) for _ in range(4)] == [0.0] * 4
    assert limit.frame(conn) == 0.5  # rate 2: the next token in half a second
    assert limit.frame(other) == 0.0  # per connection
    clock.now += 0.5
    assert limit.frame(conn) == 0.0


def test_a_closed_connection_starts_afresh():
    limit = limits()
    conn = object()
    for _ in range(4):
        limit.frame(conn)
    assert limit.frame(conn) > 0
    limit.close(conn, None)
    assert limit.frame(conn) == 0.0


def test_joins_per_address_as_many_at_once_as_connections():
    clock = Clock()
    limit = limits(clock)
    assert [limit.join("10.0.0.1") for _ in range(3)] == [0.0] * 3
    assert limit.join("10.0.0.1") == 0.5
    assert limit.join("10.0.0.2") == 0.0
    clock.now += 0.5
    assert limit.join("10.0.0.1") == 0.0


def test_a_connection_that_ignores_refusals_is_told_to_go():
    clock = Clock()
    limit = limits(clock)
    conn = object()
    assert not any(limit.ignores_refusals(conn) for _ in range(IGNORED_BURST))
    assert limit.ignores_refusals(conn)
    clock.now += 1  # two more a second are allowed again
    assert not limit.ignores_refusals(conn)


def test_rate_limit_zero_is_no_limit():
    limit = limits(rate_limit=0.0)
    conn = object()
    assert all(limit.frame(conn) == 0.0 for _ in range(1000))
    assert all(limit.join("10.0.0.1") == 0.0 for _ in range(1000))
    assert not any(limit.ignores_refusals(conn) for _ in range(1000))
