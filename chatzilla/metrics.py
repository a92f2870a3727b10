"""What ``/metrics`` tells Prometheus about one app (no I/O here).

Each app has a :class:`Metrics` of its own (its own registry: two apps in
one process, as in the tests, count apart). The hub and the connections
count events into it; what is a state rather than an event (connections by
transport, people, rooms, the backend's health) is read when scraped.

Where it is served is the app's choice (see :mod:`chatzilla.app`): on a port
of its own (``--metrics-port``), or on the public port behind a bearer
token (``--metrics-token``), or nowhere.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: Seconds, for the store latency histogram: a commit on a local disk or
#: Postgres is a few milliseconds; past a second something is wrong.
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The counters of one app, and the gauges it reads when scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "chatzilla_messages_received", "Messages from this process's clients, stored", registry=r
        )
        self.changes = Counter(
            "chatzilla_message_changes",
            "Edits and deletes of stored messages made in this process",
            registry=r,
        )
        self.messages_out = Counter(
            "chatzilla_messages_delivered",
            "Messages delivered to this process's people (once a message, whoever sent it)",
            registry=r,
        )
        self.deliveries = Counter(
            "chatzilla_deliveries",
            "Message frames sent to connections (once a message a connection)",
            registry=r,
        )
        self.refused = Counter(
            "chatzilla_refused_frames",
            "Frames answered with an error frame, by its code",
            ["code"],
            registry=r,
        )
        self.slow_closes = Counter(
            "chatzilla_slow_consumer_closes",
            "Connections closed because their client did not read what was sent to it",
            registry=r,
        )
        self.store_seconds = Histogram(
            "chatzilla_store_seconds",
            "Time the backend took to store a message (to acknowledge it)",
            buckets=STORE_BUCKETS,
            registry=r,
        )
        #: Open chat connections by SockJS transport name (``websocket``,
        #: ``xhr``, ``xhr_streaming``, ``eventsource``, ``jsonp``, ``rawwebsocket``).
        self.transports: collections.Counter[str] = collections.Counter()

    def watch(self, stats: Callable[[], dict[str, int]], healthy: Callable[[], bool]) -> None:
        """Read ``stats()`` (``participants``, ``rooms``) and ``healthy()``
        at each scrape."""
        self.registry.register(_States(self.transports, stats, healthy))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        return generate_latest(self.registry)


class _States(Collector):
    """The gauges, read when scraped."""

    def __init__(
        self,
        transports: collections.Counter[str],
        stats: Callable[[], dict[str, int]],
        healthy: Callable[[], bool],
    ) -> None:
        self._transports = transports
        self._stats = stats
        self._healthy = healthy

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily(
            "chatzilla_connections", "Open chat connections, by SockJS transport", labels=["transport"]
        )
        for transport, count in sorted(self._transports.items()):
            connections.add_metric([transport], count)
        yield connections
        stats = self._stats()
        yield GaugeMetricFamily(
            "chatzilla_people", "People joined to a room here (once a room)", value=stats["participants"]
        )
        yield GaugeMetricFamily("chatzilla_rooms", "Rooms with someone in them here", value=stats["rooms"])
        yield GaugeMetricFamily(
            "chatzilla_backend_healthy",
            "1 while the backend stores and reads, 0 while it cannot (as /healthz's degraded)",
            value=1 if self._healthy() else 0,
        )
