"""Acknowledged messages per second, and fan-out, per storage, side by side:
memory, SQLite, Postgres, Redis, and Postgres with Redis (``--kinds``).

Starts one real server per storage kind (``python -m chatzilla`` on a loopback
port), connects ``--clients`` SockJS websocket clients that each send as fast
as their acknowledgements come back (``--window`` messages in flight per
client), and counts ``sent`` frames for ``--seconds``: first each client in a
room of its own (no fan-out), then all in one room (each message delivered
to every other client: deliveries a second are acks times clients - 1). The
runs happen side by side in one invocation so the ratios compare like with
like. Flood control is off (``--rate-limit 0``): the figure is the server's,
not the limit's. Postgres gets a database of its own on the server at
``--postgres`` (created and dropped), Redis a key prefix of its own at
``--redis`` (deleted after); postgres+redis gets both. Then, for the stores
many processes share, the one room again with the clients spread over two
server processes: each message is delivered in both. ``--rounds`` measures
each cell several times, the kinds taking turns, and reports the median.

    .venv/bin/python bench/ack_rate.py --clients 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import redis
from chatzilla_process import start_chatzilla
from tornado.websocket import websocket_connect


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    proc, url = start_chatzilla("--log-level", "WARNING", "--rate-limit", "0", *args)
    return proc, url.replace("http", "ws", 1)


async def sender(url: str, n: int, window: int, stop_at: float, counts: list[int], room: str) -> None:
    ws = await websocket_connect(f"{url}/chat/000/bench{n:05d}/websocket")
    assert await ws.read_message() == "o"

    async def send(frame: dict) -> None:
        await ws.write_message(json.dumps([json.dumps(frame)]))

    await send({"type": "join", "email": f"bench{n}@example.com", "room": room})
    in_flight, seq, joined = 0, 0, False
    while True:
        while joined and in_flight < window and time.monotonic() < stop_at:
            seq += 1
            in_flight += 1
            await send({"type": "message", "content": f"message {seq} from {n}", "ref": f"{n}-{seq}"})
        if joined and in_flight == 0:
            break
        packet = await ws.read_message()
        if packet is None:
            raise SystemExit("server closed the connection")
        if not packet.startswith("a"):
            continue
        for text in json.loads(packet[1:]):
            frame = json.loads(text)
            if frame["type"] == "joined":
                joined = True
            elif frame["type"] == "sent":
                in_flight -= 1
                if time.monotonic() < stop_at:
                    counts[n] += 1
            elif frame["type"] == "error":
                raise SystemExit(f"error frame: {frame}")
    ws.close()


async def measure(urls: list[str], clients: int, window: int, seconds: float, shared: bool) -> float:
    """Acknowledgements a second; client n speaks to ``urls[n % len(urls)]``."""
    counts = [0] * clients
    start = time.monotonic()
    stop_at = start + seconds
    await asyncio.gather(
        *(
            sender(urls[n % len(urls)], n, window, stop_at, counts, "bench" if shared else f"bench{n}")
            for n in range(clients)
        )
    )
    return sum(counts) / seconds


def cell(kind: str, tmp: str, args: argparse.Namespace, shared: bool, processes: int) -> float:
    """One measurement on a fresh store of ``kind``, with ``processes`` servers sharing it."""
    with storage(kind, tmp, args) as flags:
        servers = [start_server(*flags) for _ in range(processes)]
        try:
            urls = [url for _, url in servers]
            return asyncio.run(measure(urls, args.clients, args.window, args.seconds, shared))
        finally:
            for proc, _ in servers:
                proc.terminate()
                proc.wait(10)


KINDS = ("memory", "sqlite", "postgres", "redis", "postgres+redis")
#: The kinds many processes can share.
SHARED = ("postgres", "redis", "postgres+redis")


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[list[str]]:
    """The flags of a new database on the server of ``admin_url``, dropped afterwards."""
    name = f"chatzilla_bench_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    try:
        yield ["--database-url", admin_url.rsplit("/", 1)[0] + "/" + name]
    finally:
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


@contextlib.contextmanager
def redis_prefix(url: str) -> Iterator[list[str]]:
    """The flags of a key prefix of its own in the Redis at ``url``, deleted afterwards."""
    prefix = f"chatzilla-bench-{uuid.uuid4().hex[:12]}"
    try:
        yield ["--redis-url", url, "--redis-prefix", prefix]
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextlib.contextmanager
def storage(kind: str, tmp: str, args: argparse.Namespace) -> Iterator[list[str]]:
    """The flags of a fresh store of ``kind``, removed afterwards
    (postgres+redis: history in Postgres, fan-out and presence in Redis)."""
    if kind == "memory":
        yield ["--storage", "memory"]
    elif kind == "sqlite":
        yield ["--storage", "sqlite", "--db", f"{tmp}/bench-{uuid.uuid4().hex[:8]}.db"]
    else:
        with contextlib.ExitStack() as stack:
            flags = []
            if kind.startswith("postgres"):
                flags += stack.enter_context(postgres_database(args.postgres))
            if kind.endswith("redis"):
                flags += stack.enter_context(redis_prefix(args.redis))
            yield flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--window", type=int, default=1, help="messages in flight per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each cell this many times, kinds in turns; report the median",
    )
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated, of " + ", ".join(KINDS))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--write", help="put the table into this Markdown file's Storage section")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]

    print(
        f"# acknowledged messages per second, {args.clients} clients x {args.window} in flight, "
        f"{args.seconds:.0f} s per cell, {platform.node()} ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d')}"
    )
    start_load = os.getloadavg()[0]
    lines = ["| scenario | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    receivers = args.clients - 1
    with tempfile.TemporaryDirectory() as tmp:
        for shared, processes, label in (
            (False, 1, "acks/s, a room per client (no fan-out)"),
            (True, 1, f"acks/s, one room ({receivers} receivers each)"),
            (True, 2, f"acks/s, one room, clients on 2 processes ({receivers} receivers each)"),
        ):
            measured: dict[str, list[float]] = {k: [] for k in kinds if processes == 1 or k in SHARED}
            for turn in range(args.rounds):
                # Kinds in turns, each round in the other order: load from
                # elsewhere falls on all of them alike.
                for kind in list(measured)[:: 1 if turn % 2 == 0 else -1]:
                    measured[kind].append(cell(kind, tmp, args, shared, processes))
            results = {k: statistics.median(v) for k, v in measured.items()}
            lines.append(
                f"| {label} | "
                + " | ".join(f"{results[k]:.0f}" if k in results else "-" for k in kinds)
                + " |"
            )
            if shared:
                fanout = " | ".join(f"{results[k] * receivers:.0f}" if k in results else "-" for k in kinds)
                lines.append(f"| deliveries/s in that room | {fanout} |")
    load = f"load average {start_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print("\n".join([*lines, load]))
    if args.write:
        write_section(
            args.write,
            [
                "## Storage",
                "",
                f"bench/ack_rate.py (`make bench` runs it last): {args.clients} websocket clients, each "
                f"sending as fast as its acknowledgements come back ({args.window} in flight), "
                f"{args.seconds:.0f} s a cell, median of {args.rounds} (kinds in turns), flood control off; "
                "one server process per storage (two sharing it in the last rows), on "
                f"{platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}, {load}. "
                "Postgres and Redis are the machine's own, on loopback.",
                "",
                *lines,
                "",
            ],
        )


def write_section(path: str, section: list[str]) -> None:
    """Put ``section`` (starting with its ``## `` heading) into the
    Markdown file at ``path``: in place of the section of that heading,
    or before its Notes (else at its end)."""
    with open(path) as f:
        text = f.read().split("\n")
    heading = section[0]
    if heading in text:
        start = text.index(heading)
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
    else:
        start = end = text.index("## Notes") if "## Notes" in text else len(text)
    text[start:end] = section
    with open(path, "w") as f:
        f.write("\n".join(text))


if __name__ == "__main__":
    main()
