"""Acknowledged messages per second: durable SQLite against in-memory history.

Starts one real server per storage kind (``python -m chatzilla`` on a loopback
port), connects ``--clients`` SockJS websocket clients that each send as fast
as their acknowledgements come back (``--window`` messages in flight per
client), and counts ``sent`` frames for ``--seconds``. Both runs happen side
by side in one invocation so the ratio compares like with like. Flood control
is off (``--rate-limit 0``): the figure is the server's, not the limit's.

    .venv/bin/python bench/ack_rate.py --clients 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time

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


async def measure(url: str, clients: int, window: int, seconds: float, shared: bool) -> float:
    counts = [0] * clients
    start = time.monotonic()
    stop_at = start + seconds
    await asyncio.gather(
        *(sender(url, n, window, stop_at, counts, "bench" if shared else f"bench{n}") for n in range(clients))
    )
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--window", type=int, default=1, help="messages in flight per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    print(
        f"# acknowledged messages per second, {args.clients} clients x {args.window} in flight, "
        f"{args.seconds:.0f} s per cell, {platform.node()} ({os.cpu_count()} cores), "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(f"{'scenario':<38}{'in-memory':>12}{'SQLite':>12}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for shared, label in (
            (False, "one room per client (no fan-out)"),
            (True, f"one shared room ({args.clients - 1} receivers)"),
        ):
            results = {}
            for kind, extra in (
                ("memory", ["--storage", "memory"]),
                ("sqlite", ["--storage", "sqlite", "--db", f"{tmp}/bench-{shared}.db"]),
            ):
                proc, url = start_server(*extra)
                try:
                    results[kind] = asyncio.run(measure(url, args.clients, args.window, args.seconds, shared))
                finally:
                    proc.terminate()
                    proc.wait(10)
            print(
                f"{label:<38}{results['memory']:>12.0f}{results['sqlite']:>12.0f}"
                f"{results['sqlite'] / results['memory']:>8.2f}"
            )


if __name__ == "__main__":
    main()
