"""Long room: what a room's history costs. A room holding a million messages
against an empty one, side by side, on the same server build.

Two measurements:

- ``growth``: a fresh database, one sender, every message with a ``ref`` (as
  the page sends them), flood control off, one message in flight: the time
  each successive thousand acknowledgements takes. Flat when a message's
  cost does not depend on the history before it.
- ``compare`` (the default): for an empty room and for a room seeded with
  ``--messages`` messages (written straight into the SQLite file, or the
  Redis stream, before the server starts), each on its own server, both
  running, measured in alternating turns: acknowledgements per second of
  ``--senders`` senders (``--window`` in flight each), then the latency of
  ``--joins`` joins (``joined`` after ``join``, on a fresh connection each)
  and of as many catch-ups (a join with ``since`` 100 messages before the
  newest).

    .venv/bin/python bench/long_room.py                       # SQLite, 1,000,000 messages
    .venv/bin/python bench/long_room.py --backend redis       # the Redis stream
    .venv/bin/python bench/long_room.py --mode growth --count 8000

Prints a table, or JSON with ``--json`` (bench/run.py reads that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid

from chatzilla_process import start_chatzilla
from tornado.websocket import websocket_connect

ROOM = "long"


# -- seeding ------------------------------------------------------------------------


def seed_sqlite(path: str, count: int, room: str = ROOM) -> None:
    """Write ``count`` messages of ``room`` straight into a Chatzilla SQLite file."""
    from chatzilla.backends.sqlite import QUERIES, connect, migrate

    con = connect(path)
    migrate(con)
    start = time.time() - 86400 * 90  # spread over the last three months
    step = 86400 * 90 / max(count, 1)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    batch = 50_000
    for low in range(1, count + 1, batch):
        con.executemany(
            QUERIES["insert"],
            (
                (
                    room,
                    i,
                    f"user{i % 97}@example.com",
                    f"seeded message {i} " + "x" * (i % 120),
                    start + i * step,
                    f"s{i}",
                    0,  # not a reply
                )
                for i in range(low, min(low + batch, count + 1))
            ),
        )
    con.execute(QUERIES["set_last_id"], (room, count))
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def seed_redis(url: str, prefix: str, count: int, room: str = ROOM) -> None:
    """Write ``count`` entries into ``room``'s stream and its id counter."""
    import redis

    r = redis.Redis.from_url(url)
    start = time.time() - 86400 * 90
    step = 86400 * 90 / max(count, 1)
    pipe = r.pipeline(transaction=False)
    for i in range(1, count + 1):
        fields = {
            "s": f"user{i % 97}@example.com",
            "c": f"seeded message {i} " + "x" * (i % 120),
            "t": repr(start + i * step),
            "r": f"s{i}",
            "o": "",
        }
        pipe.xadd(f"{prefix}:stream:{room}", fields, id=f"0-{i}")
        if i % 10_000 == 0:
            pipe.execute()
    pipe.set(f"{prefix}:seq:{room}", count)
    pipe.execute()


def clear_redis(url: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i : i + 1000])


# -- clients ------------------------------------------------------------------------


class Client:
    """One SockJS-over-WebSocket connection, frames in and out."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []

    @classmethod
    async def open(cls, url: str) -> Client:
        ws = await websocket_connect(
            f"{url.replace('http', 'ws', 1)}/chat/000/{uuid.uuid4().hex[:12]}/websocket"
        )
        assert await ws.read_message() == "o"
        return cls(ws)

    async def send(self, frame: dict) -> None:
        await self.ws.write_message(json.dumps([json.dumps(frame)]))

    async def next(self) -> dict:
        while not self.frames:
            packet = await self.ws.read_message()
            if packet is None:
                raise SystemExit("the server closed a connection")
            if packet.startswith("a"):
                self.frames.extend(json.loads(t) for t in json.loads(packet[1:]))
            elif packet.startswith("c"):
                raise SystemExit(f"the server closed a connection: {packet}")
        return self.frames.pop(0)

    async def expect(self, kind: str) -> dict:
        while True:
            frame = await self.next()
            if frame["type"] == kind:
                return frame
            if frame["type"] == "error":
                raise SystemExit(f"error frame: {frame}")

    def close(self) -> None:
        self.ws.close()


async def send_loop(url: str, n: int, window: int, stop_at: float, run: str, on_ack) -> None:
    client = await Client.open(url)
    await client.send({"type": "join", "email": f"sender{n}@example.com", "room": ROOM})
    await client.expect("joined")
    in_flight = seq = 0
    while True:
        while in_flight < window and time.monotonic() < stop_at:
            seq += 1
            in_flight += 1
            await client.send(
                {"type": "message", "content": f"message {seq} from {n}", "ref": f"{run}-{n}-{seq}"}
            )
        if in_flight == 0:
            break
        frame = await client.next()
        if frame["type"] == "sent":
            in_flight -= 1
            on_ack()
        elif frame["type"] == "error":
            raise SystemExit(f"error frame: {frame}")
    client.close()


async def ack_rate(url: str, senders: int, window: int, seconds: float) -> float:
    run = uuid.uuid4().hex[:8]
    acks = [0]
    stop_at = time.monotonic() + seconds

    def count() -> None:
        if time.monotonic() < stop_at:
            acks[0] += 1

    await asyncio.gather(*(send_loop(url, n, window, stop_at, run, count) for n in range(senders)))
    return acks[0] / seconds


async def join_latencies(url: str, joins: int, since: int | None) -> list[float]:
    """Seconds from ``join`` to ``joined``, one fresh connection at a time."""
    times = []
    for n in range(joins):
        client = await Client.open(url)
        frame = {"type": "join", "email": f"reader{n}@example.com", "room": ROOM}
        if since is not None:
            frame["since"] = since
        start = time.perf_counter()
        await client.send(frame)
        await client.expect("joined")
        times.append(time.perf_counter() - start)
        client.close()
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def newest_id(url: str) -> int:
    client = await Client.open(url)
    await client.send({"type": "join", "email": "probe@example.com", "room": ROOM})
    history = (await client.expect("joined"))["history"]
    client.close()
    return history[-1]["id"] if history else 0


async def measure_rooms(urls: dict[str, str], args) -> dict:
    """Both servers run at once and are measured in turns (empty, long,
    long, empty, ...), ``args.rounds`` rounds: load from elsewhere on the
    machine falls on both alike instead of on whichever ran second."""
    sent = {label: 0.0 for label in urls}
    joins: dict[str, list[float]] = {label: [] for label in urls}
    catch_ups: dict[str, list[float]] = {label: [] for label in urls}
    per_round = max(1, args.joins // args.rounds)
    for n in range(args.rounds):
        for label in list(urls) if n % 2 == 0 else list(urls)[::-1]:
            url = urls[label]
            sent[label] += await ack_rate(url, args.senders, args.window, args.seconds / args.rounds)
            joins[label] += await join_latencies(url, per_round, None)
            catch_ups[label] += await join_latencies(url, per_round, max(await newest_id(url) - 100, 0))
    return {
        label: {
            "acks_per_s": sent[label] / args.rounds,
            "join_p50_ms": pct(joins[label], 50) * 1000,
            "join_p99_ms": pct(joins[label], 99) * 1000,
            "catchup_p50_ms": pct(catch_ups[label], 50) * 1000,
            "catchup_p99_ms": pct(catch_ups[label], 99) * 1000,
        }
        for label in urls
    }


def server_flags(backend: str, db: str, prefix: str, redis_url: str) -> list[str]:
    common = ["--log-level", "WARNING", "--rate-limit", "0", "--max-connections-per-address", "1000"]
    if backend == "redis":
        return [*common, "--redis-url", redis_url, "--redis-prefix", prefix]
    return [*common, "--storage", "sqlite", "--db", db]


def compare(args) -> dict:
    counts = {"empty": 0, "long": args.messages}
    prefixes = {label: f"bench-long-{uuid.uuid4().hex[:6]}" for label in counts}
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            urls, seed_s = {}, {}
            for label, count in counts.items():
                db = f"{tmp}/{label}.db"
                seeded = time.monotonic()
                if args.backend == "redis":
                    seed_redis(args.redis_url, prefixes[label], count)
                else:
                    seed_sqlite(db, count)
                seed_s[label] = time.monotonic() - seeded
                proc, urls[label] = start_chatzilla(
                    *server_flags(args.backend, db, prefixes[label], args.redis_url)
                )
                procs.append(proc)
            results: dict = asyncio.run(measure_rooms(urls, args))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            if args.backend == "redis":
                for prefix in prefixes.values():
                    clear_redis(args.redis_url, prefix)
    for label, count in counts.items():
        results[label].update(messages=count, seed_s=seed_s[label])
    results["ratio"] = results["long"]["acks_per_s"] / results["empty"]["acks_per_s"]
    results["load"] = os.getloadavg()[0]
    return results


async def growth_run(url: str, count: int) -> list[float]:
    """Seconds per thousand acknowledgements, one sender, one in flight."""
    client = await Client.open(url)
    await client.send({"type": "join", "email": "grower@example.com", "room": ROOM})
    await client.expect("joined")
    run = uuid.uuid4().hex[:8]
    per_thousand = []
    start = time.perf_counter()
    for seq in range(1, count + 1):
        await client.send(
            {"type": "message", "content": f"message {seq} " + "y" * 200, "ref": f"{run}-{seq}"}
        )
        await client.expect("sent")
        if seq % 1000 == 0:
            now = time.perf_counter()
            per_thousand.append(now - start)
            start = now
    client.close()
    return per_thousand


def growth(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench-grow-{uuid.uuid4().hex[:6]}"
        proc, url = start_chatzilla(*server_flags(args.backend, f"{tmp}/grow.db", prefix, args.redis_url))
        try:
            return {"seconds_per_thousand": asyncio.run(growth_run(url, args.count))}
        finally:
            proc.terminate()
            proc.wait(10)
            if args.backend == "redis":
                clear_redis(args.redis_url, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("compare", "growth"), default="compare")
    parser.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages seeded in the long room")
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=4, help="messages in flight per sender")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of sending per room")
    parser.add_argument("--joins", type=int, default=200, help="joins, and catch-ups, timed per room")
    parser.add_argument("--rounds", type=int, default=4, help="turns each room gets (the rooms alternate)")
    parser.add_argument("--count", type=int, default=8000, help="growth: messages sent")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = growth(args) if args.mode == "growth" else compare(args)
    if args.json:
        print(json.dumps(result))
        return
    load = os.getloadavg()[0]
    if args.mode == "growth":
        for i, s in enumerate(result["seconds_per_thousand"], 1):
            print(f"acks {i * 1000 - 999:>6}-{i * 1000:<6} {s:7.2f} s")
        print(f"(load average {load:.2f})")
        return
    print(f"# long room ({args.backend}): empty room vs {args.messages:,} messages, load {load:.2f}")
    print(f"{'metric':<24}{'empty':>12}{'long':>12}")
    for key in ("acks_per_s", "join_p50_ms", "join_p99_ms", "catchup_p50_ms", "catchup_p99_ms", "seed_s"):
        print(f"{key:<24}{result['empty'][key]:>12.1f}{result['long'][key]:>12.1f}")
    print(f"ratio long/empty acks: {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
