"""Figures for the hostile-client items of issue 12, against any checkout.

    .venv/bin/python bench/hostile.py [--chatzilla DIR] [--seconds N] SCENARIO...

runs ``python -m chatzilla`` from DIR (this checkout by default: pass an
older one to compare) and reports, per scenario:

* ``half-join``: one connection joins with ``since`` 2**64 while another
  says a message every millisecond or so: the server's memory growth, its
  traceback lines, and what the joiner was told;
* ``refused-flood``: 10 connections each send packets of 15 frames of 64 KB
  past their rate limit; another person's say -> sent latency (median and
  95th percentile) and the server's CPU;
* ``slowloris``: 1,100 unfinished request heads from 127.0.0.1 (made a
  client, not a trusted proxy) to a server limited to 1,024 open files,
  then /healthz asked from 127.0.0.2: how long it takes to answer;
* ``file-limit``: the same heads against a server limited to 1,024 open
  files: the log lines it writes in the seconds that follow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatzilla_process import start_chatzilla
from tornado.websocket import websocket_connect

ROOT = Path(__file__).resolve().parent.parent


class Server:
    def __init__(self, checkout: Path, *args: str, files: int | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log")  # noqa: SIM115
        db = Path(tempfile.mkdtemp()) / "c.db"
        self.proc, url = start_chatzilla(
            "--db", str(db), *args, stderr=self.log, checkout=checkout, files=files
        )
        self.port = int(url.rsplit(":", 1)[1])

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Client:
    """A SockJS WebSocket client: frames in, frames out."""

    def __init__(self, port: int, n: int) -> None:
        self.url = f"ws://127.0.0.1:{port}/chat/{n % 1000:03d}/b{n}x{os.getpid()}/websocket"

    async def open(self) -> Client:
        self.ws = await websocket_connect(self.url, max_message_size=64 << 20)
        assert (await self.ws.read_message()) == "o"
        return self

    async def send(self, *frames: dict | str) -> None:
        texts = [f if isinstance(f, str) else json.dumps(f) for f in frames]
        await self.ws.write_message(json.dumps(texts))

    async def frames(self):
        while True:
            packet = await self.ws.read_message()
            if packet is None:
                return
            if packet.startswith("a"):
                for text in json.loads(packet[1:]):
                    yield json.loads(text)

    async def expect(self, kind: str) -> dict:
        async for frame in self.frames():
            if frame.get("type") == kind:
                return frame
        raise ConnectionError("closed")


async def half_join(server: Server, seconds: float) -> dict:
    mallory = await Client(server.port, 1).open()
    await mallory.send({"type": "join", "email": "mallory@example.com", "since": 2**64, "ref": "m"})
    told = await mallory.expect("error")
    alice = await Client(server.port, 2).open()
    await alice.send({"type": "join", "email": "alice@example.com"})
    await alice.expect("joined")
    before = server.rss_mib()
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        await alice.send(*({"type": "message", "content": "x" * 1000, "ref": f"r{n + i}"} for i in range(10)))
        n += 10
        for _ in range(10):
            await alice.expect("sent")
    await asyncio.sleep(1)
    return {
        "told": told["code"],
        "messages": n,
        "rss_growth_mib": round(server.rss_mib() - before, 1),
        "traceback_lines": server.log_text().count("Traceback"),
    }


async def _flood(port: int, seconds: float, closed) -> None:
    """10 connections, each sending a packet of 15 frames of 64 KB and
    reading its 15 answers, again and again; a new connection when the
    server closes one (counted in ``closed``)."""
    frame = json.dumps({"type": "message", "content": "f" * 65000, "ref": "f"})
    deadline = time.monotonic() + seconds

    async def flood(n: int) -> None:
        while time.monotonic() < deadline:
            try:
                client = await Client(port, 100 + n).open()
                while time.monotonic() < deadline:
                    await client.send(*[frame] * 15)
                    answers = 0
                    async for _ in client.frames():
                        answers += 1
                        if answers == 15:
                            break
                    else:
                        break  # closed by the server
                else:
                    return
            except Exception:
                await asyncio.sleep(0.05)
            with closed.get_lock():
                closed.value += 1

    await asyncio.gather(*(flood(n) for n in range(10)))


def _flood_process(port: int, seconds: float, closed) -> None:
    asyncio.run(_flood(port, seconds, closed))


async def refused_flood(server: Server, seconds: float) -> dict:
    # The flood from a process of its own: in this one, it would delay the
    # latency probe itself.
    bob = await Client(server.port, 1).open()
    await bob.send({"type": "join", "email": "bob@example.com"})
    await bob.expect("joined")
    closed = multiprocessing.Value("i", 0)
    flooder = multiprocessing.Process(target=_flood_process, args=(server.port, seconds + 2, closed))
    flooder.start()
    await asyncio.sleep(2)  # the flood under way
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    latencies = []
    n = 0
    while time.monotonic() - t0 < seconds:
        start = time.perf_counter()
        await bob.send({"type": "message", "content": "ping", "ref": f"p{n}"})
        await bob.expect("sent")
        latencies.append((time.perf_counter() - start) * 1000)
        n += 1
        await asyncio.sleep(0.25)
    cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
    flooder.join(10)
    return {
        "latency_ms_median": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(sorted(latencies)[int(len(latencies) * 0.95) - 1], 1),
        "server_cpu_percent": round(cpu),
        "flooder_connections_closed": closed.value,
    }


async def heads(port: int, n: int) -> list:
    opened = []
    for _ in range(n):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            opened.append(writer)
        except OSError:
            break
    return opened


async def healthz_seconds(port: int) -> float | str:
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0)), 10
        )
        writer.write(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    except (TimeoutError, OSError) as exc:
        return f"no answer ({type(exc).__name__})"
    return round(time.monotonic() - start, 3) if answer.startswith(b"HTTP/1.1 200") else answer[:40].decode()


async def slowloris(server: Server, seconds: float) -> dict:
    held = await heads(server.port, 1100)
    await asyncio.sleep(1)
    answer = await healthz_seconds(server.port)
    for writer in held:
        writer.close()
    return {"heads_sent": len(held), "healthz_seconds": answer}


async def file_limit(server: Server, seconds: float) -> dict:
    held = await heads(server.port, 1100)
    await asyncio.sleep(seconds)
    text = server.log_text()
    for writer in held:
        writer.close()
    return {"heads_sent": len(held), "log_lines": text.count("\n"), "log_bytes": len(text)}


SCENARIOS = {
    "half-join": (half_join, ("--rate-limit", "0"), None),
    "refused-flood": (refused_flood, (), None),
    "slowloris": (slowloris, ("--trusted-proxies", ""), 1024),
    "file-limit": (file_limit, (), 1024),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chatzilla", type=Path, default=ROOT)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    for name in args.scenarios:
        run, flags, files = SCENARIOS[name]
        server = Server(args.chatzilla, *flags, files=files)
        try:
            figures = await run(server, args.seconds)
        except Exception:
            print(server.log_text()[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop()
        print(json.dumps({"scenario": name, "load": os.getloadavg()[0], **figures}), flush=True)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    asyncio.run(main())
