"""Soak: hundreds of clients join, chat and leave in churn for minutes; then
the server must be back to no sessions, and to the memory it had before.

Starts ``python -m chatzilla`` on a loopback port (SQLite in a temporary
folder), then runs ``--clients`` client loops for ``--duration`` seconds. Each
loop connects (SockJS WebSocket mostly, some raw WebSocket, some xhr-polling),
joins one of ``--rooms`` rooms, says a few things at human-ish pace while
reading everything, and leaves: most close cleanly, some drop the TCP
connection, and some polling ones just stop polling (their sessions must
expire). Then it connects again as someone else.

Memory is the server's VmRSS from /proc. Python keeps the memory it once
needed in its allocator's arenas, so the first crowd raises the floor for
good; a warm-up churn (``--warmup`` seconds, same load) therefore runs
first, and the figure to compare with is the one after it, when everyone
has left. A leak shows as the memory after the soak rising above that.

    .venv/bin/python bench/soak.py                 # 300 clients, 3 minutes
    .venv/bin/python bench/soak.py --clients 100 --duration 30 --warmup 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from chatzilla_process import start_chatzilla
from loadgen import read_rss_kib
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import websocket_connect


class Server:
    def __init__(self, db: str, clients: int, log: str) -> None:
        self.log = log
        self.proc, self.url = start_chatzilla(
            "--db",
            db,
            "--log-level",
            "WARNING",
            "--disconnect-delay",
            "5",
            # Every client comes from 127.0.0.1: one address for all of them.
            "--max-connections-per-address",
            str(4 * clients),
            "--rate-limit",
            "50",
            stderr=open(log, "w"),  # noqa: SIM115 (the child keeps its own copy)
        )

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/healthz", timeout=10) as response:
            return json.loads(response.read())

    def rss_mib(self) -> float:
        return read_rss_kib(self.proc.pid) / 1024

    def errors(self) -> list[str]:
        """The lines the server logged at ERROR (or that start a traceback)."""
        lines = Path(self.log).read_text(errors="replace").splitlines()
        return [line for line in lines if " ERROR " in line or line.startswith("Traceback")]

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(15)


class Tally:
    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()

    def __getitem__(self, key):
        return self.counts[key]

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


# -- clients ---------------------------------------------------------------------


class SockJSWebSocket:
    def __init__(self, url: str, n: int) -> None:
        self.url = f"{url.replace('http', 'ws', 1)}/chat/{n % 1000:03d}/soak{n:08d}/websocket"
        self.ws = None

    async def open(self) -> None:
        self.ws = await websocket_connect(self.url)
        assert await self.ws.read_message() == "o"

    async def send(self, frame: dict) -> None:
        await self.ws.write_message(json.dumps([json.dumps(frame)]))

    async def frames(self):
        while (packet := await self.ws.read_message()) is not None:
            if packet[0] == "a":
                for text in json.loads(packet[1:]):
                    yield json.loads(text)
            elif packet[0] == "c":
                yield {"type": "_close", "code": json.loads(packet[1:])[0]}

    def close(self, abort: bool) -> None:
        if abort:
            self.ws.protocol.stream.close()  # the TCP connection just drops
        else:
            self.ws.close()


class RawWebSocket(SockJSWebSocket):
    def __init__(self, url: str, n: int) -> None:
        super().__init__(url, n)
        self.url = f"{url.replace('http', 'ws', 1)}/chat/websocket"

    async def open(self) -> None:
        self.ws = await websocket_connect(self.url)

    async def send(self, frame: dict) -> None:
        await self.ws.write_message(json.dumps(frame))

    async def frames(self):
        while (packet := await self.ws.read_message()) is not None:
            yield json.loads(packet)


class XhrPolling:
    def __init__(self, url: str, n: int) -> None:
        self.base = f"{url}/chat/{n % 1000:03d}/soak{n:08d}"
        self.http = AsyncHTTPClient()
        self.stopped = False

    async def open(self) -> None:
        response = await self.http.fetch(self.base + "/xhr", method="POST", body=b"")
        assert response.body.startswith(b"o")

    async def send(self, frame: dict) -> None:
        await self.http.fetch(self.base + "/xhr_send", method="POST", body=json.dumps([json.dumps(frame)]))

    async def frames(self):
        while not self.stopped:
            try:
                response = await self.http.fetch(
                    self.base + "/xhr", method="POST", body=b"", request_timeout=60
                )
            except HTTPClientError:
                return
            body = response.body.decode()
            if body.startswith("a"):
                for text in json.loads(body[1:]):
                    yield json.loads(text)
            elif body.startswith("c"):
                yield {"type": "_close", "code": json.loads(body[1:])[0]}
                return

    def close(self, abort: bool) -> None:
        # Either way the polls stop; the server expires the session after
        # its disconnect_delay (an aborted long poll is noticed sooner).
        self.stopped = True


async def one_visit(url: str, n: int, rooms: int, tally: Tally) -> None:
    kind = random.choices([SockJSWebSocket, RawWebSocket, XhrPolling], [7, 2, 1])[0]
    client = kind(url, n)
    await client.open()
    tally.add("connections")
    email = f"user{n}@example.com"
    await client.send({"type": "join", "email": email, "room": f"room-{n % rooms}"})
    stay = random.uniform(3, 15)
    leave_at = time.monotonic() + stay

    async def talk():
        i = 0
        while time.monotonic() < leave_at - 1:
            await asyncio.sleep(random.uniform(0.5, 2.5))
            i += 1
            await client.send(
                {
                    "type": "message",
                    "content": f"soak {n}.{i} " + "x" * random.randint(0, 300),
                    "ref": f"{n}.{i}",
                }
            )
            tally.add("sent")

    async def listen():
        async for frame in client.frames():
            kind = frame["type"]
            if kind == "error":
                tally.add(f"error {frame['code']}")
                if frame["code"] == "rate_limited" and "join" in frame["reason"]:
                    await asyncio.sleep(frame["retry_after"])
                    await client.send({"type": "join", "email": email, "room": f"room-{n % rooms}"})
            elif kind == "_close":
                tally.add(f"closed {frame['code']}")
                return
            else:
                tally.add(f"received {kind}")

    talking = asyncio.ensure_future(talk())
    listening = asyncio.ensure_future(listen())
    await asyncio.wait([talking, listening], timeout=stay + 5)
    talking.cancel()
    abort = random.random() < 0.2
    tally.add("left by dropping the connection" if abort else "left cleanly")
    client.close(abort)
    listening.cancel()
    await asyncio.gather(talking, listening, return_exceptions=True)


async def churn(url: str, clients: int, rooms: int, seconds: float, tally: Tally) -> None:
    stop_at = time.monotonic() + seconds
    numbers = iter(range(10**9))

    async def loop(first: int):
        await asyncio.sleep(random.uniform(0, 3))  # do not all arrive at once
        n = first
        while time.monotonic() < stop_at:
            try:
                await asyncio.wait_for(one_visit(url, n, rooms, tally), 60)
            except Exception as exc:  # a failed visit is counted, not fatal
                tally.add(f"visit failed: {type(exc).__name__}")
            await asyncio.sleep(random.uniform(0, 1))
            n = next(numbers) + clients * 1000

    await asyncio.gather(*(loop(i) for i in range(clients)))


async def sample(server: Server, every: float, samples: list, stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        health = await asyncio.to_thread(server.health)
        samples.append(
            (time.monotonic() - started, health["connections"], health["participants"], server.rss_mib())
        )
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def wait_for_nobody(server: Server, timeout: float = 60) -> tuple[dict, float]:
    started = time.monotonic()
    while True:
        health = await asyncio.to_thread(server.health)
        if health["connections"] == 0 and health["participants"] == 0:
            return health, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return health, time.monotonic() - started
        await asyncio.sleep(0.5)


async def main_async(args) -> int:
    AsyncHTTPClient.configure(None, max_clients=max(10, args.clients))
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(f"{tmp}/soak.db", args.clients, f"{tmp}/server.log")
        try:
            launch_rss = server.rss_mib()
            print(f"server pid {server.proc.pid}, {server.url}; VmRSS at launch {launch_rss:.1f} MiB")
            warm = Tally()
            if args.warmup > 0:
                await churn(server.url, args.clients, args.rooms, args.warmup, warm)
                health, waited = await wait_for_nobody(server)
                print(
                    f"warm-up {args.warmup:.0f} s: {warm['connections']} connections; "
                    f"then {health} after {waited:.1f} s"
                )
            await asyncio.sleep(2)
            start_health, start_rss = await asyncio.to_thread(server.health), server.rss_mib()
            print(f"start: {start_health}, VmRSS {start_rss:.1f} MiB")

            tally, samples, stop = Tally(), [], asyncio.Event()
            sampler = asyncio.ensure_future(sample(server, args.sample_every, samples, stop))
            started = time.monotonic()
            await churn(server.url, args.clients, args.rooms, args.duration, tally)
            elapsed = time.monotonic() - started
            stop.set()
            await sampler

            end_health, waited = await wait_for_nobody(server)
            await asyncio.sleep(2)
            end_rss = server.rss_mib()
            peak = max(samples, key=lambda s: s[3])
            busiest = max(samples, key=lambda s: s[1])
            print(f"\nsoak: {args.clients} client loops, {args.rooms} rooms, {elapsed:.0f} s")
            print("  t(s)  connections  participants  VmRSS(MiB)")
            for t, conns, people, rss in samples:
                print(f"{t:6.0f}  {conns:11d}  {people:12d}  {rss:10.1f}")
            for key, value in sorted(tally.counts.items()):
                print(f"  {key}: {value}")
            print(f"busiest: {busiest[1]} connections; peak VmRSS {peak[3]:.1f} MiB")
            print(f"after:  {end_health} ({waited:.1f} s after the last client), VmRSS {end_rss:.1f} MiB")
            errors = server.errors()
            print(f"server log: {len(errors)} lines at ERROR", *errors[:5], sep="\n  ")
            change = (end_rss - start_rss) / start_rss * 100
            ok = (
                end_health["connections"] == 0
                and end_health["participants"] == 0
                and abs(change) <= 10
                and not errors
            )
            print(
                f"memory: {start_rss:.1f} MiB before, {end_rss:.1f} MiB after ({change:+.1f} %); "
                f"launch {launch_rss:.1f} MiB -> {'OK' if ok else 'FAILED'}"
            )
            return 0 if ok else 1
        finally:
            print(f"server exit status {server.stop()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300, help="client loops at once (default 300)")
    parser.add_argument("--duration", type=float, default=180, help="seconds of churn (default 180)")
    parser.add_argument("--warmup", type=float, default=30, help="seconds of warm-up churn (default 30)")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--sample-every", type=float, default=10.0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 1000 or not 0 < args.duration <= 3600:
        parser.error("keep it bounded: 1..1000 clients, at most an hour")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
