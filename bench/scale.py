"""Scale-out: one Chatzilla process against two sharing rooms through Redis.

Starts Chatzilla processes with ``--redis-url`` (a key prefix of their own,
deleted afterwards), runs the fan-out scenario of bench/loadgen.py with the
receivers split across the processes (receiver worker i talks to process i;
the senders to the first), side by side in one run, and prints deliveries/s
and latency for each. Writes the table to docs/scaling.md with ``--out``.

    .venv/bin/python bench/scale.py --receivers 1000 --out docs/scaling.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import uuid
from pathlib import Path

import loadgen
import redis
from chatzilla_process import start_chatzilla


def start(redis_url: str, prefix: str) -> tuple[subprocess.Popen, str]:
    return start_chatzilla(
        "--log-level",
        "WARNING",
        "--redis-url",
        redis_url,
        "--redis-prefix",
        prefix,
        # The generator's clients all come from 127.0.0.1 and send flat out.
        "--rate-limit",
        "0",
        "--max-connections-per-address",
        "100000",
    )


def measure(processes: int, args) -> dict:
    prefix = f"chatzilla-bench-{uuid.uuid4().hex[:8]}"
    servers = [start(args.redis_url, prefix) for _ in range(processes)]
    try:
        urls = ",".join(url for _, url in servers)
        return loadgen.fanout(
            urls,
            args.receivers,
            [("rate", args.rate), ("flat", args.window)],
            duration=args.duration,
            workers=2,
            server_pid=servers[0][0].pid if processes == 1 else None,
        )
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(15)
            proc.stdout.close()
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--receivers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="offered messages/s in the fixed-rate run")
    parser.add_argument("--window", type=int, default=4, help="messages in flight per sender, flat out")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", help="also write the table (markdown) here")
    args = parser.parse_args()

    results = {n: measure(n, args) for n in (1, 2)}
    lines = [
        "# Scaling out through Redis\n",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by `bench/scale.py` on "
        f"`{platform.node()}` ({os.cpu_count()} cores), Python {platform.python_version()}, Redis at "
        f"{args.redis_url}. {args.receivers} receivers split evenly across the processes, 5 senders on the "
        "first; the load generator runs on the same machine.\n",
        "| run | metric | 1 process | 2 processes | 2 / 1 |",
        "|---|---|---:|---:|---:|",
    ]
    for i, label in enumerate((f"offered {args.rate:.0f} msg/s", f"flat out (window {args.window})")):
        one, two = results[1]["runs"][i], results[2]["runs"][i]
        rows = (
            ("deliveries/s", lambda r: r["deliveries_per_s"]),
            ("latency p50 (ms)", lambda r: 1000 * r["latency"]["p50"]),
            ("latency p99 (ms)", lambda r: 1000 * r["latency"]["p99"]),
            ("lost deliveries", lambda r: r["lost"]),
        )
        for n, (name, get) in enumerate(rows):
            a, b = get(one), get(two)
            ratio = f"{b / a:.2f}" if a else "-"
            lines.append(f"| {label if n == 0 else ''} | {name} | {a:,.1f} | {b:,.1f} | {ratio} |")
    lines.append(
        "\nOn 2 cores the generator itself needs most of a core at these rates, so two server "
        "processes compete with it and each other: the ratio shows what a second process adds here, "
        "not on a machine with a core per process."
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
