"""Load generator for Chatzilla's benchmark: SockJS over WebSocket, as sockjs-client speaks it.

Every client opens ``/chat/<3 digits>/<random>/websocket``, waits for the open
frame ``o``, sends client frames as JSON arrays of strings (``["{...}"]``,
masked as a browser masks them) and reads the server's frames: ``a[...]``
(a batch of messages), ``h`` (heartbeat) and ``c[code,"reason"]`` (close). The
application frames are those of ../shared/PROTOCOL.md, version 1.

The generator must not be the bottleneck, so it is built for speed and split
over processes:

- receiver workers (``--workers``, default 2) each hold a share of the joined
  receivers in one epoll loop of raw non-blocking sockets; a delivered
  ``message`` is recognised by a marker in its content
  (``bz<run>.<sender>.<seq>.<send time in microseconds>``) without decoding
  the JSON, and its latency (receipt ``time.time()`` minus the embedded send
  time: all processes are on one machine and share the clock) goes into a
  0.1 ms histogram; a worker that gets busy naps 1 ms between polls so that
  each read takes several frames (fewer system calls per delivery);
- one sender worker holds the senders (and the probe) and sends at a fixed
  offered rate or as fast as acknowledgements allow (a window of messages in
  flight per sender);
- the parent only coordinates, over pipes.

Each worker reports its own CPU time (``time.process_time``) for every run, so
a run can say whether the generator kept up: a worker near 100% of a core is
flagged as saturated.

Scenarios (see :func:`fanout`, :func:`join_storm`, :func:`idle_memory`), also
runnable one at a time against a running server:

    .venv/bin/python bench/loadgen.py http://127.0.0.1:8000/ fanout --receivers 100 --rate 100
    .venv/bin/python bench/loadgen.py http://127.0.0.1:8000/ fanout --receivers 1000 --flat
    .venv/bin/python bench/loadgen.py http://127.0.0.1:8000/ storm --receivers 1000
    .venv/bin/python bench/loadgen.py http://127.0.0.1:8000/ memory --receivers 1000 --pid 1234

Only loopback addresses are accepted as targets.
"""

from __future__ import annotations

import argparse
import base64
import collections
import errno
import hashlib
import ipaddress
import json
import math
import multiprocessing
import os
import random
import re
import select
import socket
import string
import sys
import time
from urllib.parse import urlsplit

# -- the wire ---------------------------------------------------------------


def bench_token(email: str) -> str:
    """The bot token a load client of ``email`` joins with under protocol 2
    (``--auth link``): derived from the address, so every worker knows its
    clients' without being told; the bench puts their digests in the
    server's database before starting it (see crowd.py's ``seed_people``)."""
    return "czb_bench" + hashlib.sha256(email.encode()).hexdigest()


#: A delivered message's content: run id, sender index, sequence, send time (µs).
MARK = re.compile(rb"bz(\d+)\.(\d+)\.(\d+)\.(\d+)")
#: Sender index of the sync messages that mark "everything before has arrived".
SYNC = 99
#: Latency histogram: 0.1 ms buckets up to 20 s; slower ones are kept exactly.
BUCKETS_PER_S = 10_000
NBUCKETS = 20 * BUCKETS_PER_S

#: A busy receiver worker (at least NAP_BUSY of a core over the last NAP_WINDOW
#: seconds, and NAP_EVENTS sockets ready at once) naps NAP seconds between
#: polls, so that each read finds several frames: far fewer system calls per
#: delivery, for at most NAP seconds more latency, and only under heavy load.
NAP, NAP_BUSY, NAP_WINDOW, NAP_EVENTS = 0.001, 0.25, 0.1, 8

CONNECTING, HANDSHAKE, OPENING, JOINING, JOINED, CLOSED = range(6)
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
EPOLLERRS = select.EPOLLERR | select.EPOLLHUP
SESSION_CHARS = string.ascii_lowercase + string.digits


def ws_frame(text: str, opcode: int = 0x1) -> bytes:
    """One masked client WebSocket frame (FIN set), as a browser sends it."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = random.getrandbits(32).to_bytes(4, "big")
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + (int.from_bytes(payload, "big") ^ mask).to_bytes(n, "big")


def sockjs_frame(frame: dict) -> bytes:
    """An application frame as sockjs-client sends it: a JSON array of one string."""
    return ws_frame(json.dumps([json.dumps(frame, separators=(",", ":"))]))


def parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "//" in url else f"http://{url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"loadgen only targets loopback addresses, not {host}")
    return ("127.0.0.1" if host == "localhost" else host), port


def read_cpu_ticks(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_machine_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])  # guest time is already counted in user
    hz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hz, total / hz


def read_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Conn:
    __slots__ = (
        "acked",
        "buf",
        "email",
        "fd",
        "frag",
        "idx",
        "in_flight",
        "last",
        "out",
        "participants",
        "room",
        "sent",
        "seq",
        "sock",
        "state",
        "synced",
        "t_connect",
        "t_joined",
        "t_start",
    )

    def __init__(self, idx: int, email: str, room: str | None, n_senders: int) -> None:
        self.idx, self.email, self.room = idx, email, room
        self.sock = None
        self.fd = -1
        self.state = CONNECTING
        self.buf = b""
        self.frag = None
        self.out = b""
        self.last = [0] * (n_senders + 1)  # last sequence seen per sender (+ the probe)
        self.synced = -1
        self.t_start = self.t_connect = self.t_joined = 0.0
        self.participants = 0
        self.in_flight = self.seq = self.sent = self.acked = 0


# -- a worker process -----------------------------------------------------------


class Worker:
    """One process's clients in one epoll loop, driven by commands on a pipe."""

    def __init__(self, pipe, host: str, port: int, role: str, n_senders: int, protocol: int = 1) -> None:
        self.pipe, self.host, self.port, self.role = pipe, host, port, role
        self.n_senders = n_senders
        self.protocol = protocol
        self.ep = select.epoll()
        self.ep.register(pipe.fileno(), EPOLLIN)
        self.conns: dict[int, Conn] = {}
        self.all: list[Conn] = []
        self.quit = False
        self.connect_job: dict | None = None
        self.run_job: dict | None = None
        self.failures: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.closed_by_server = 0
        self.frames = 0
        self.run = 0
        self.reset(0)

    # -- counters of one run --------------------------------------------------

    def reset(self, run: int) -> None:
        self.run = run
        self.count = 0
        self.gaps = self.dups = self.stale = 0
        self.hist = [0] * NBUCKETS
        self.slow: list[float] = []
        self.lat_max = 0.0
        self.first_rx = self.last_rx = 0.0
        self.reads = self.naps = 0
        self.frames0 = self.frames
        self.cpu0 = time.process_time()
        self.wall0 = time.time()
        for c in self.all:
            c.last = [0] * (self.n_senders + 1)
        self.errors.clear()

    def stats(self) -> dict:
        return {
            "count": self.count,
            "gaps": self.gaps,
            "dups": self.dups,
            "stale": self.stale,
            "hist": {i: v for i, v in enumerate(self.hist) if v},
            "slow": self.slow,
            "lat_max": self.lat_max,
            "first_rx": self.first_rx,
            "last_rx": self.last_rx,
            "cpu": time.process_time() - self.cpu0,
            "wall": time.time() - self.wall0,
            "errors": dict(self.errors),
            "closed_by_server": self.closed_by_server,
            "joined": sum(c.state == JOINED for c in self.all),
            "frames": self.frames,
            "frames_per_read": (self.frames - self.frames0) / self.reads if self.reads else None,
            "naps": self.naps,
        }

    # -- the loop ---------------------------------------------------------------

    def loop(self) -> None:
        pipe_fd = self.pipe.fileno()
        conns = self.conns
        read = os.read
        hot = self.role == "receiver"
        busy, busy_since, busy_cpu = False, time.time(), time.process_time()
        while not self.quit:
            events = self.ep.poll(self.timeout())
            now = time.time()
            for fd, ev in events:
                if fd == pipe_fd:
                    try:
                        command, kwargs = self.pipe.recv()
                    except EOFError:
                        self.quit = True
                        break
                    getattr(self, "cmd_" + command)(**kwargs)
                    continue
                c = conns.get(fd)
                if c is None:
                    continue
                if ev & EPOLLOUT:
                    self.on_writable(c, now)
                    if c.state == CLOSED:
                        continue
                if ev & (EPOLLIN | EPOLLERRS):
                    try:
                        data = read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self.lost(c, now, errno.errorcode.get(exc.errno, str(exc)))
                        continue
                    if not data:
                        self.lost(c, now, "eof")
                        continue
                    now = time.time()
                    self.reads += 1
                    if c.state == JOINED and hot and not c.buf and self.on_deliveries(c, data, now):
                        continue
                    if c.state >= OPENING:
                        self.on_data(c, data, now)
                    else:
                        self.on_handshake(c, data, now)
            now = time.time()
            self.tick(now)
            if hot:
                if now - busy_since >= NAP_WINDOW:
                    cpu = time.process_time()
                    busy = (cpu - busy_cpu) / (now - busy_since) >= NAP_BUSY
                    busy_since, busy_cpu = now, cpu
                if busy and len(events) >= NAP_EVENTS:
                    self.naps += 1
                    time.sleep(NAP)
        for c in self.all:
            if c.sock is not None:
                c.sock.close()

    def timeout(self) -> float:
        if self.run_job is not None:
            return max(0.0, min(self.run_job["next"] - time.time(), 0.01))
        if self.connect_job is not None:
            return 0.02
        return 0.2

    def tick(self, now: float) -> None:
        if self.connect_job is not None:
            self.progress_connect(now)
        if self.run_job is not None:
            self.progress_run(now)

    def reply(self, kind: str, **data) -> None:
        self.pipe.send((kind, data))

    # -- connections -----------------------------------------------------------

    def start(self, c: Conn, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock, c.fd, c.t_start, c.state = sock, sock.fileno(), now, CONNECTING
        self.conns[c.fd] = c
        err = sock.connect_ex((self.host, self.port))
        if err not in (0, errno.EINPROGRESS):
            self.lost(c, now, errno.errorcode.get(err, str(err)))
            return
        self.ep.register(c.fd, EPOLLOUT)

    def on_writable(self, c: Conn, now: float) -> None:
        if c.state == CONNECTING:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.lost(c, now, errno.errorcode.get(err, str(err)))
                return
            c.t_connect = now
            c.state = HANDSHAKE
            server_id = f"{random.randrange(1000):03d}"
            session = "".join(random.choices(SESSION_CHARS, k=8))
            key = base64.b64encode(random.randbytes(16)).decode()
            request = (
                f"GET /chat/{server_id}/{session}/websocket HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://{self.host}:{self.port}\r\n\r\n"
            )
            self.ep.modify(c.fd, EPOLLIN)
            self.write(c, request.encode())
            return
        if c.out:
            out, c.out = c.out, b""
            self.ep.modify(c.fd, EPOLLIN)
            self.write(c, out)

    def write(self, c: Conn, data: bytes) -> None:
        if c.state == CLOSED:
            return
        if c.out:
            c.out += data
            return
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.lost(c, time.time(), errno.errorcode.get(exc.errno, str(exc)))
            return
        if n < len(data):
            c.out = data[n:]
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    def lost(self, c: Conn, now: float, reason: str) -> None:
        """The connection ended (or never started): count it, release it."""
        was = c.state
        if was == CLOSED:
            return
        c.state = CLOSED
        if c.sock is not None:
            self.conns.pop(c.fd, None)
            try:
                self.ep.unregister(c.fd)
            except (OSError, ValueError):
                pass
            c.sock.close()
            c.sock = None
        if was < JOINED:
            self.failures[f"{reason} while {('connecting', 'handshaking', 'opening', 'joining')[was]}"] += 1
            if self.connect_job is not None:
                self.connect_job["failed"] += 1
        else:
            self.closed_by_server += 1
            if c.in_flight and self.run_job is not None:
                c.in_flight = 0

    def on_handshake(self, c: Conn, data: bytes, now: float) -> None:
        c.buf += data
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(c.buf) > 16384:
                self.lost(c, now, "oversized handshake")
            return
        head, rest = c.buf[:end], c.buf[end + 4 :]
        c.buf = b""
        if not head.startswith(b"HTTP/1.1 101"):
            self.lost(c, now, "refused: " + head.split(b"\r\n", 1)[0].decode(errors="replace"))
            return
        c.state = OPENING
        if rest:
            self.on_data(c, rest, now)

    # -- frames ------------------------------------------------------------------

    def on_data(self, c: Conn, data: bytes, now: float) -> None:
        if c.buf:
            data = c.buf + data
            c.buf = b""
        if c.state == JOINED and self.role == "receiver" and self.on_deliveries(c, data, now):
            return
        pos, n = 0, len(data)
        while n - pos >= 2:
            length = data[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            b0 = data[pos]
            pos = end
            opcode = b0 & 0x0F
            payload = data[start:end]
            if not b0 & 0x80 or opcode == 0:  # fragmented message (servers here never do it)
                c.frag = payload if opcode else (c.frag or b"") + payload
                if not b0 & 0x80:
                    continue
                payload, c.frag = c.frag, None
                opcode = 1
            if opcode == 1 or opcode == 2:
                self.frames += 1
                self.on_payload(c, payload, now)
                if c.state == CLOSED:
                    return
            elif opcode == 8:
                self.lost(c, now, "websocket close")
                return
            elif opcode == 9:
                self.write(c, ws_frame(payload.decode("latin-1"), 0xA))
        if pos < n:
            c.buf = data[pos:]

    def on_deliveries(self, c: Conn, data: bytes, now: float) -> bool:
        """The hot path: a chunk of whole ``a[...]`` text frames carrying only deliveries.

        Walks the frame headers, then finds every marker of the chunk in one
        regex pass (a marker cannot straddle frames). Returns False, having
        done nothing, for anything else (a partial frame, another kind of
        frame, a frame with something besides deliveries in it).
        """
        pos, n, frames = 0, len(data), 0
        while pos < n:
            if data[pos] != 0x81 or pos + 2 >= n:
                return False
            length = data[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126 and pos + 4 < n:
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                return False
            if data[start] != 0x61:  # 'a'
                return False
            pos = start + length
            frames += 1
        if pos != n or b"joined" in data or b"error" in data or b"sent" in data:
            return False
        self.frames += frames
        self.count_marks(c, MARK.findall(data), now)
        return True

    def on_payload(self, c: Conn, p: bytes, now: float) -> None:
        kind = p[:1]
        if kind == b"a":
            if b"joined" in p or b"error" in p or b"sent" in p:
                self.on_slow(c, p, now)
                return
            if self.role != "receiver":
                return
            self.count_marks(c, MARK.findall(p), now)
        elif kind == b"o":
            c.state = JOINING
            frame = {"type": "join", "email": c.email}
            if self.protocol == 2:
                frame["token"] = bench_token(c.email)
            if c.room is not None:
                frame["room"] = c.room
            self.write(c, sockjs_frame(frame))
        elif kind == b"c":
            self.lost(c, now, "sockjs close " + p[1:].decode(errors="replace"))

    def count_marks(self, c: Conn, marks, now: float) -> None:
        """Account for the deliveries of one read: ``marks`` are MARK's groups, as bytes."""
        run, hist, lasts = self.run, self.hist, c.last
        n_last = len(lasts)
        counted = 0
        for run_b, sender_b, seq_b, sent_b in marks:
            sender, seq = int(sender_b), int(seq_b)
            if sender == SYNC:
                c.synced = seq
                continue
            if int(run_b) != run or sender >= n_last:
                self.stale += 1
                continue
            last = lasts[sender]
            if seq == last + 1:
                lasts[sender] = seq
            elif seq <= last:
                self.dups += 1
            else:
                self.gaps += seq - last - 1
                lasts[sender] = seq
            counted += 1
            latency = now - int(sent_b) * 1e-6
            bucket = int(latency * BUCKETS_PER_S)
            if bucket < NBUCKETS:
                hist[bucket if bucket > 0 else 0] += 1
            else:
                self.slow.append(latency)
            if latency > self.lat_max:
                self.lat_max = latency
        if counted:
            self.count += counted
            if not self.first_rx:
                self.first_rx = now
            self.last_rx = now

    def on_slow(self, c: Conn, p: bytes, now: float) -> None:
        """A batch with something other than deliveries in it: decode it all."""
        for text in json.loads(p[1:]):
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "message":
                if self.role == "receiver":
                    self.count_marks(c, MARK.findall(str(frame.get("content", "")).encode()), now)
            elif kind == "joined":
                if c.state == JOINING:
                    c.state = JOINED
                    c.t_joined = now
                    c.participants = len(frame.get("participants", ()))
                    if self.connect_job is not None:
                        self.connect_job["joined"] += 1
            elif kind == "sent":
                self.on_ack(c, frame.get("ref"), now, None)
            elif kind == "error":
                self.errors[frame.get("code", "?")] += 1
                if c.state == JOINING:
                    self.lost(c, now, f"error {frame.get('code')}")
                    return
                self.on_ack(c, frame.get("ref"), now, frame.get("code"))

    # -- commands: connecting ----------------------------------------------------

    def cmd_connect(self, specs: list, batch: int | None, start_at: float, timeout: float) -> None:
        """Open and join ``specs`` [(idx, email, room)], ``batch`` at a time (None: all at once)."""
        new = [Conn(idx, email, room, self.n_senders) for idx, email, room in specs]
        self.all.extend(new)
        self.connect_job = {
            "pending": collections.deque(new),
            "conns": new,
            "batch": batch,
            "start_at": start_at,
            "deadline": start_at + timeout,
            "joined": 0,
            "failed": 0,
            "started": False,
            "cpu0": time.process_time(),
        }
        self.failures.clear()

    def progress_connect(self, now: float) -> None:
        job = self.connect_job
        if now < job["start_at"]:
            return
        pending = job["pending"]
        if pending:
            running = len(job["conns"]) - len(pending) - job["joined"] - job["failed"]
            room = len(pending) if job["batch"] is None else job["batch"] - running
            for _ in range(min(room, len(pending))):
                self.start(pending.popleft(), time.time())
        done = job["joined"] + job["failed"]
        if done < len(job["conns"]) and now < job["deadline"]:
            return
        self.connect_job = None
        for c in job["conns"]:
            if c.state not in (JOINED, CLOSED):
                self.lost(c, now, "timeout")
        t0 = job["start_at"]
        joined = [c for c in job["conns"] if c.state == JOINED]
        self.reply(
            "connected",
            joined=len(joined),
            failed=len(job["conns"]) - len(joined),
            failures=dict(self.failures),
            join_times=[c.t_joined - t0 for c in joined],
            connect_times=[c.t_connect - c.t_start for c in joined],
            max_participants=max((c.participants for c in joined), default=0),
            cpu=time.process_time() - job["cpu0"],
            wall=time.time() - t0,
        )

    def cmd_close_all(self) -> None:
        now = time.time()
        for c in self.all:
            if c.state != CLOSED:
                c.state = JOINED  # a close we asked for is not a failure
                self.lost(c, now, "closed")
        self.closed_by_server = 0
        self.all = []
        self.reply("closed")

    # -- commands: measuring ---------------------------------------------------

    def cmd_reset(self, run: int) -> None:
        self.reset(run)
        self.reply("reset")

    def cmd_stats(self) -> None:
        self.reply("stats", **self.stats())

    def cmd_progress(self, token: int) -> None:
        self.reply(
            "progress",
            count=self.count,
            frames=self.frames,
            synced=sum(c.synced == token for c in self.all if c.state == JOINED),
            joined=sum(c.state == JOINED for c in self.all),
        )

    def cmd_quit(self) -> None:
        self.quit = True

    # -- commands: sending (the sender worker) ----------------------------------

    def cmd_sync(self, token: int) -> None:
        """Sender 0 sends a sync message; receivers note its token when it arrives."""
        c = next(c for c in self.all if c.state == JOINED)
        self.write(
            c, sockjs_frame({"type": "message", "content": f"bz0.{SYNC}.{token}.0", "ref": f"sync-{token}"})
        )
        self.reply("synced")

    def cmd_run(
        self,
        run: int,
        mode: str,
        value: float,
        duration: float,
        probe_interval: float,
        start_at: float,
        ack_timeout: float,
    ) -> None:
        senders = [c for c in self.all if c.state == JOINED and c.idx < self.n_senders]
        probe = next((c for c in self.all if c.state == JOINED and c.idx == self.n_senders), None)
        for c in self.all:
            c.in_flight = c.seq = c.sent = c.acked = 0
        self.errors.clear()
        self.run_job = {
            "run": run,
            "mode": mode,
            "value": value,
            "senders": senders,
            "probe": probe,
            "t0": start_at,
            "t_end": start_at + duration,
            "k": 0,
            "next": start_at,
            "probe_interval": probe_interval,
            "next_probe": start_at + probe_interval / 2,
            "deadline": start_at + duration + ack_timeout,
            "pending": {},
            "ack_lat": [],
            "probe_lat": [],
            "first_tx": 0.0,
            "last_tx": 0.0,
            "cpu0": time.process_time(),
            "wall0": time.time(),
            "unacked": 0,
            "max_lag": 0.0,
        }

    def send_one(self, c: Conn, now: float) -> None:
        job = self.run_job
        c.seq += 1
        c.sent += 1
        c.in_flight += 1
        ref = f"{job['run']}-{c.idx}-{c.seq}"
        job["pending"][ref] = (c, time.perf_counter())
        t = time.time()
        if not job["first_tx"]:
            job["first_tx"] = t
        job["last_tx"] = t
        self.write(
            c,
            sockjs_frame(
                {"type": "message", "content": f"bz{job['run']}.{c.idx}.{c.seq}.{int(t * 1e6)}", "ref": ref}
            ),
        )

    def on_ack(self, c: Conn, ref, now: float, error_code) -> None:
        job = self.run_job
        if job is None or not isinstance(ref, str):
            return
        entry = job["pending"].pop(ref, None)
        if entry is None:
            return
        c.in_flight -= 1
        if error_code is None:
            c.acked += 1
            latency = time.perf_counter() - entry[1]
            (job["probe_lat"] if c is job["probe"] else job["ack_lat"]).append(latency)
        if job["mode"] == "flat" and c is not job["probe"]:
            self.refill(c, time.time())

    def refill(self, c: Conn, now: float) -> None:
        job = self.run_job
        if now < job["t_end"] and now >= job["t0"] and c.state == JOINED:
            while c.in_flight < job["value"]:
                self.send_one(c, now)

    def progress_run(self, now: float) -> None:
        job = self.run_job
        if now < job["t0"]:
            job["next"] = job["t0"]
            return
        senders = job["senders"]
        if now < job["t_end"]:
            if job["mode"] == "rate":
                rate, k = job["value"], job["k"]
                while True:
                    due = job["t0"] + k / rate
                    if due > now or due >= job["t_end"]:
                        break
                    if now - due > job["max_lag"]:
                        job["max_lag"] = now - due
                    self.send_one(senders[k % len(senders)], now)
                    k += 1
                job["k"] = k
                job["next"] = job["t0"] + k / rate
            else:
                for c in senders:
                    self.refill(c, now)
                job["next"] = now + 0.01
            if job["probe"] is not None and job["probe_interval"] and now >= job["next_probe"]:
                self.send_one(job["probe"], now)
                job["next_probe"] += job["probe_interval"]
            if job["probe"] is not None and job["probe_interval"]:
                job["next"] = min(job["next"], job["next_probe"])
            return
        job["next"] = now + 0.01
        in_flight = sum(c.in_flight for c in self.all)
        if in_flight and now < job["deadline"]:
            return
        self.run_job = None
        everyone = senders + ([job["probe"]] if job["probe"] is not None else [])
        self.reply(
            "ran",
            sent=sum(c.sent for c in everyone),
            acked=sum(c.acked for c in everyone),
            probe_sent=job["probe"].sent if job["probe"] else 0,
            probe_acked=job["probe"].acked if job["probe"] else 0,
            unacked=in_flight,
            errors=dict(self.errors),
            ack_lat=job["ack_lat"],
            probe_lat=job["probe_lat"],
            first_tx=job["first_tx"],
            last_tx=job["last_tx"],
            max_lag=job["max_lag"],
            cpu=time.process_time() - job["cpu0"],
            wall=time.time() - job["wall0"],
        )


def worker_main(pipe, host: str, port: int, role: str, n_senders: int, protocol: int = 1) -> None:
    try:
        Worker(pipe, host, port, role, n_senders, protocol).loop()
    except KeyboardInterrupt:
        pass


# -- the coordinator -------------------------------------------------------------


class ScenarioError(RuntimeError):
    pass


class LoadGen:
    """Receiver workers plus one sender worker, driven from this process."""

    def __init__(
        self, url: str, workers: int = 2, senders: int = 5, prefix: str = "r", protocol: int = 1
    ) -> None:
        """``protocol`` 2: the clients join with their :func:`bench_token`
        (a server under ``--auth link`` that knows them)."""
        # Several servers sharing rooms (comma-separated URLs): receiver
        # worker i talks to server i modulo their number, the sender worker
        # to the first.
        self.targets = [parse_url(u) for u in url.split(",")]
        self.n_workers = workers
        self.n_senders = senders
        self.prefix = prefix
        self.protocol = protocol
        self.procs: list = []
        self.pipes: list = []
        self.next_idx = 0

    def __enter__(self) -> LoadGen:
        ctx = multiprocessing.get_context("spawn")
        roles = ["receiver"] * self.n_workers + ["sender"]
        for i, role in enumerate(roles):
            parent, child = ctx.Pipe()
            host, port = self.targets[i % len(self.targets)] if role == "receiver" else self.targets[0]
            proc = ctx.Process(
                target=worker_main,
                args=(child, host, port, role, self.n_senders, self.protocol),
                daemon=True,
                name=f"loadgen-{role}",
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.pipes.append(parent)
        return self

    def __exit__(self, *exc) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit", {}))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    @property
    def receivers(self) -> list:
        return self.pipes[: self.n_workers]

    @property
    def sender(self):
        return self.pipes[-1]

    def ask(self, pipes: list, command: str, timeout: float = 30.0, **kwargs) -> list[dict]:
        for pipe in pipes:
            pipe.send((command, kwargs))
        return [self.answer(pipe, timeout) for pipe in pipes]

    def answer(self, pipe, timeout: float) -> dict:
        proc = self.procs[self.pipes.index(pipe)]
        deadline = time.time() + timeout
        while not pipe.poll(0.2):
            if not proc.is_alive():
                raise ScenarioError(f"generator worker {proc.name} died (exit code {proc.exitcode})")
            if time.time() > deadline:
                raise ScenarioError(f"generator worker {proc.name} did not answer within {timeout:.0f} s")
        try:
            return pipe.recv()[1]
        except EOFError:
            raise ScenarioError(f"generator worker {proc.name} died") from None

    def connect(
        self,
        n: int,
        *,
        room_size: int | None = None,
        room_prefix: str = "room",
        batch: int | None = 100,
        storm: bool = False,
        timeout: float = 60.0,
        people: int | None = None,
    ) -> dict:
        """Join ``n`` receivers, spread over the receiver workers; returns merged figures.

        ``people``: the receivers are that many people, each with
        ``n / people`` connections (tabs), receiver i being person
        ``i % people``; by default every receiver is a person of its own."""
        shares: list[list] = [[] for _ in self.receivers]
        first = self.next_idx
        for i in range(n):
            idx = self.next_idx
            self.next_idx += 1
            room = None if room_size is None else f"{room_prefix}{i // room_size}"
            person = idx if people is None else first + i % people
            shares[i % len(shares)].append((idx, f"{self.prefix}{person}@load.test", room))
        start_at = time.time() + (0.3 if storm else 0.0)
        for pipe, share in zip(self.receivers, shares, strict=False):
            pipe.send(
                (
                    "connect",
                    {
                        "specs": share,
                        "batch": None if storm else batch,
                        "start_at": start_at,
                        "timeout": timeout,
                    },
                )
            )
        answers = [self.answer(pipe, timeout + 10) for pipe in self.receivers]
        merged = {
            "joined": sum(a["joined"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "failures": sum((collections.Counter(a["failures"]) for a in answers), collections.Counter()),
            "join_times": sorted(t for a in answers for t in a["join_times"]),
            "connect_times": sorted(t for a in answers for t in a["connect_times"]),
            "max_participants": max(a["max_participants"] for a in answers),
            "cpu": [a["cpu"] for a in answers],
            "wall": max(a["wall"] for a in answers),
        }
        merged["failures"] = dict(merged["failures"])
        return merged

    def connect_senders(self, probe: bool, timeout: float = 60.0, probe_room: str | None = None) -> None:
        """Join the senders to the lobby, and the probe (if ``probe``) to
        ``probe_room`` (None: the lobby too)."""
        specs = [(i, f"sender{i}@load.test", None) for i in range(self.n_senders)]
        if probe:
            specs.append((self.n_senders, "probe@load.test", probe_room))
        self.sender.send(
            ("connect", {"specs": specs, "batch": None, "start_at": time.time(), "timeout": timeout})
        )
        answer = self.answer(self.sender, timeout + 10)
        if answer["failed"]:
            raise ScenarioError(f"senders could not join: {answer['failures']}")

    def progress(self, token: int = -1) -> dict:
        answers = self.ask(self.receivers, "progress", token=token)
        return {key: sum(a[key] for a in answers) for key in ("count", "frames", "synced", "joined")}

    def sync(self, token: int, timeout: float = 60.0) -> None:
        """Wait until every receiver has everything the server queued for it so far."""
        self.ask([self.sender], "sync", token=token)
        deadline = time.time() + timeout
        while True:
            p = self.progress(token)
            if p["synced"] >= p["joined"]:
                return
            if time.time() > deadline:
                raise ScenarioError(
                    f"sync: only {p['synced']} of {p['joined']} receivers caught up within {timeout:.0f} s"
                )
            time.sleep(0.05)

    def quiesce(self, quiet: float = 1.0, timeout: float = 60.0) -> float:
        """Wait until no frame has arrived for ``quiet`` seconds; return the time waited."""
        t0 = time.time()
        last, since = -1, time.time()
        while time.time() - t0 < timeout:
            frames = self.progress()["frames"]
            if frames != last:
                last, since = frames, time.time()
            elif time.time() - since >= quiet:
                break
            time.sleep(0.1)
        return time.time() - t0


# -- statistics -------------------------------------------------------------------


def merge_hist(stats: list[dict]) -> tuple[list[tuple[float, int]], list[float]]:
    buckets: collections.Counter = collections.Counter()
    slow: list[float] = []
    for s in stats:
        buckets.update(s["hist"])
        slow.extend(s["slow"])
    return sorted(buckets.items()), sorted(slow)


def percentile_hist(buckets: list, slow: list[float], total: int, q: float) -> float | None:
    """The q-quantile (0..1) in seconds, from 0.1 ms buckets plus exact slow values."""
    if total == 0:
        return None
    rank = min(total, max(1, math.ceil(q * total)))
    seen = 0
    for bucket, n in buckets:
        seen += n
        if seen >= rank:
            return (int(bucket) + 0.5) / BUCKETS_PER_S
    return slow[min(rank - seen, len(slow)) - 1]


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    v = sorted(values)
    pick = lambda q: v[min(len(v), max(1, math.ceil(q * len(v)))) - 1]  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": v[-1], "n": len(v)}


SATURATED = 0.90  # of one core


CORES = os.cpu_count() or 1


class MachineCpu:
    """Busy cores of the whole machine over an interval, to see other processes' load."""

    def __init__(self) -> None:
        self.busy0, self.total0 = read_machine_ticks()

    def cores_busy(self) -> float:
        busy, total = read_machine_ticks()
        return CORES * (busy - self.busy0) / max(total - self.total0, 1e-9)


def cpu_verdict(gen_cpu: dict, server_cpu: float | None, machine: float | None = None) -> str:
    """Who limited the run: the generator, the server, the machine, or nobody.

    Every figure is in cores (1.0 = one core fully busy over the run).
    """
    busiest = max(gen_cpu.values()) if gen_cpu else 0.0
    if busiest >= SATURATED:
        name = max(gen_cpu, key=gen_cpu.get)
        return f"GENERATOR SATURATED ({name} at {busiest:.0%} of a core)"
    if server_cpu is not None and server_cpu >= SATURATED:
        return "server-bound"
    if machine is not None and machine >= SATURATED * CORES:
        others = machine - sum(gen_cpu.values()) - (server_cpu or 0.0)
        note = f"; other processes {others:.0%}" if others >= 0.1 else ""
        return f"MACHINE SATURATED ({machine:.0%} of {CORES} cores busy{note})"
    return "not CPU-bound"


# -- scenarios ----------------------------------------------------------------------


def _server_cpu(pid: int | None) -> float | None:
    try:
        return read_cpu_ticks(pid) if pid else None
    except OSError:
        return None


def fanout(
    url: str,
    receivers: int,
    runs: list[tuple[str, float]],
    *,
    duration: float = 5.0,
    senders: int = 5,
    probe_interval: float = 0.1,
    workers: int = 2,
    server_pid: int | None = None,
    drain_timeout: float = 60.0,
    log=print,
) -> dict:
    """Fan-out: ``receivers`` joined clients, ``senders`` senders, one run per (mode, value).

    mode ``"rate"``: value is the offered total rate in messages per second,
    spread evenly over the senders, open loop. mode ``"flat"``: value is the
    window of unacknowledged messages per sender, as fast as acks allow; the
    probe then sends one message every ``probe_interval`` and times its ack.
    """
    out = {"receivers": receivers, "senders": senders, "runs": []}
    with LoadGen(url, workers=workers, senders=senders) as gen:
        t = time.time()
        joined = gen.connect(receivers, batch=100, timeout=max(60.0, receivers / 8))
        if joined["joined"] != receivers:
            raise ScenarioError(
                f"only {joined['joined']} of {receivers} receivers joined: {joined['failures']}"
            )
        gen.connect_senders(probe=True)
        gen.sync(token=1)
        log(f"    {receivers} receivers + {senders} senders + probe joined in {time.time() - t:.1f} s")
        for number, (mode, value) in enumerate(runs, start=2):
            result = measure(
                gen,
                receivers,
                number,
                mode,
                value,
                duration=duration,
                probe_interval=probe_interval if mode == "flat" else 0.0,
                server_pid=server_pid,
                drain_timeout=drain_timeout,
            )
            out["runs"].append(result)
            log("    " + describe_run(result))
    return out


def measure(
    gen: LoadGen,
    receivers: int,
    number: int,
    mode: str,
    value: float,
    *,
    duration: float,
    probe_interval: float,
    server_pid: int | None,
    drain_timeout: float,
    probe_apart: bool = False,
) -> dict:
    """One run of the fan-out to ``receivers`` joined receivers (run id
    ``number``): the sender worker sends for ``duration`` seconds at an offered
    rate (mode ``"rate"``, ``value`` messages a second) or as fast as acks
    allow (``"flat"``, ``value`` in flight per sender), its probe every
    ``probe_interval`` s (0: none); then every acknowledged message is awaited
    at every receiver, up to ``drain_timeout``. ``probe_apart``: the probe
    is in a room of its own (its messages reach no receiver). Returns the
    run's figures."""
    gen.sync(token=number)
    gen.ask(gen.receivers, "reset", run=number)
    cpu0 = _server_cpu(server_pid)
    machine = MachineCpu()
    start_at = time.time() + 0.1
    gen.sender.send(
        (
            "run",
            {
                "run": number,
                "mode": mode,
                "value": value,
                "duration": duration,
                "probe_interval": probe_interval,
                "start_at": start_at,
                "ack_timeout": drain_timeout,
            },
        )
    )
    ran = gen.answer(gen.sender, duration + drain_timeout + 30)
    expected = (ran["acked"] - (ran["probe_acked"] if probe_apart else 0)) * receivers
    deadline = time.time() + drain_timeout
    last, since = -1, time.time()
    while True:  # drain: every acknowledged message reaches every receiver, or we give up
        got = gen.progress()["count"]
        if got >= expected or time.time() > deadline:
            break
        if got != last:
            last, since = got, time.time()
        elif time.time() - since > 10:
            break  # nothing arrived for 10 s: what is missing is lost
        time.sleep(0.05)
    stats = gen.ask(gen.receivers, "stats")
    cpu1 = _server_cpu(server_pid)
    machine_cores = machine.cores_busy()
    count = sum(s["count"] for s in stats)
    last_rx = max(s["last_rx"] for s in stats)
    span = (last_rx - ran["first_tx"]) if count else 0.0
    buckets, slow = merge_hist(stats)
    wall = max(s["wall"] for s in stats)
    gen_cpu = {f"receiver{i + 1}": s["cpu"] / s["wall"] for i, s in enumerate(stats)}
    gen_cpu["sender"] = ran["cpu"] / max(ran["wall"], 1e-9)
    server_cpu = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None
    result = {
        "mode": mode,
        "value": value,
        "duration": duration,
        "offered_msgs_per_s": value if mode == "rate" else None,
        "sent": ran["sent"],
        "acked": ran["acked"],
        "unacked": ran["unacked"],
        "sender_lag_max": ran["max_lag"],  # how late the open-loop sender ever was
        "msgs_per_s": ran["acked"] / duration,
        "expected": expected,
        "received": count,
        "lost": max(0, expected - count),
        "gaps": sum(s["gaps"] for s in stats),
        "dups": sum(s["dups"] for s in stats),
        "stale": sum(s["stale"] for s in stats),
        "deliveries_per_s": count / span if span > 0 else 0.0,
        "latency": {q: percentile_hist(buckets, slow, count, v) for q, v in (("p50", 0.5), ("p99", 0.99))}
        | {"max": max((s["lat_max"] for s in stats), default=None) if count else None},
        "ack": percentiles(ran["ack_lat"]),
        "probe": percentiles(ran["probe_lat"]),
        "errors": ran["errors"] | {k: v for s in stats for k, v in s["errors"].items()},
        "closed_by_server": sum(s["closed_by_server"] for s in stats),
        "gen_cpu": gen_cpu,
        "server_cpu": server_cpu,
        "server_cpu_s": cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None,
        "machine_cpu": machine_cores,
        # CPU the whole generator spent per delivery (receiving is most of it).
        "gen_us_per_delivery": 1e6 * (sum(s["cpu"] for s in stats) + ran["cpu"]) / count if count else None,
        "frames_per_read": sum(s["frames_per_read"] or 0 for s in stats) / len(stats),
        "naps": sum(s["naps"] for s in stats),
        "verdict": cpu_verdict(gen_cpu, server_cpu, machine_cores),
    }
    return result


def describe_run(r: dict) -> str:
    what = f"offered {r['value']:g} msg/s" if r["mode"] == "rate" else f"flat out (window {r['value']:g})"
    lat = r["latency"]
    ms = lambda v: "-" if v is None else f"{v * 1000:.1f}"  # noqa: E731
    text = (
        f"{what}: {r['deliveries_per_s']:,.0f} deliveries/s, latency p50 {ms(lat['p50'])} "
        f"p99 {ms(lat['p99'])} max {ms(lat['max'])} ms, {r['received']}/{r['expected']} delivered "
        f"(lost {r['lost']})"
    )
    if r["probe"]["n"]:
        probe = r["probe"]
        text += f", probe ack p50 {ms(probe['p50'])} p99 {ms(probe['p99'])} max {ms(probe['max'])} ms"
    cpu = " ".join(f"{k} {v:.0%}" for k, v in r["gen_cpu"].items())
    server = "?" if r["server_cpu"] is None else f"{r['server_cpu']:.0%}"
    text += f"; CPU gen [{cpu}] server {server} machine {r['machine_cpu']:.0%}: {r['verdict']}"
    if r["errors"]:
        text += f"; errors {r['errors']}"
    return text


def join_storm(
    url: str,
    n: int = 1000,
    *,
    workers: int = 2,
    server_pid: int | None = None,
    timeout: float = 60.0,
    log=print,
) -> dict:
    """``n`` clients connect and join at the same instant; time until all have ``joined``."""
    with LoadGen(url, workers=workers, prefix="storm") as gen:
        cpu0 = _server_cpu(server_pid)
        machine = MachineCpu()
        result = gen.connect(n, storm=True, timeout=timeout)
        cpu1 = _server_cpu(server_pid)
        machine_cores = machine.cores_busy()
    times, connects = result["join_times"], result["connect_times"]
    out = {
        "n": n,
        "joined": result["joined"],
        "failed": result["failed"],
        "failures": result["failures"],
        "all_joined_s": times[-1] if len(times) == n else None,
        "last_joined_s": times[-1] if times else None,
        "join": percentiles(times),
        "connect": percentiles(connects),
        "slow_connects": sum(t > 0.9 for t in connects),  # a SYN was dropped and retried
        "gen_cpu": {f"receiver{i + 1}": c / max(result["wall"], 1e-9) for i, c in enumerate(result["cpu"])},
        "server_cpu": (cpu1 - cpu0) / result["wall"] if cpu0 is not None and cpu1 is not None else None,
        "machine_cpu": machine_cores,
    }
    out["verdict"] = cpu_verdict(out["gen_cpu"], out["server_cpu"], machine_cores)
    all_s = "-" if out["all_joined_s"] is None else f"{out['all_joined_s']:.2f} s"
    log(
        f"    join storm {n}: {out['joined']} joined, all joined in {all_s}, "
        f"p50 {out['join']['p50'] or 0:.2f} s; {out['slow_connects']} TCP connects took > 0.9 s; "
        f"failures {out['failures'] or 'none'}; {out['verdict']}"
    )
    return out


def idle_memory(
    url: str,
    n: int,
    server_pid: int,
    *,
    room_size: int | None = 100,
    workers: int = 2,
    timeout: float = 120.0,
    log=print,
) -> dict:
    """Server RSS growth per idle joined connection (rooms of ``room_size``, if the server has rooms)."""
    with LoadGen(url, workers=workers, prefix="idle") as gen:
        # Warm up the server's lazy paths; also tells whether it keeps rooms apart.
        warm = gen.connect(10, room_size=1, room_prefix="warm", batch=10)
        rooms = warm["joined"] == 10 and warm["max_participants"] == 1
        gen.ask(gen.receivers, "close_all")
        time.sleep(1.0)
        before = read_rss_kib(server_pid)
        if not rooms and room_size is not None and n > 1000:
            log(
                f"    idle memory {n}: skipped, the server ignores `room`, and {n} joins in one room "
                f"means {n * (n - 1) // 2:,} presence frames"
            )
            return {"n": n, "skipped": "server has no rooms", "rooms": False}
        t = time.time()
        joined = gen.connect(
            n, room_size=room_size if rooms else None, room_prefix="idle", batch=200, timeout=timeout
        )
        if joined["joined"] != n:
            raise ScenarioError(f"only {joined['joined']} of {n} idle clients joined: {joined['failures']}")
        gen.quiesce(quiet=1.0, timeout=60.0)
        time.sleep(1.0)
        after = read_rss_kib(server_pid)
        took = time.time() - t
    out = {
        "n": n,
        "rooms": rooms,
        "room_size": room_size if rooms else n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": (after - before) / n,
    }
    spread = f"rooms of {room_size}" if rooms else "one room"
    log(
        f"    idle memory {n} ({spread}): RSS {before / 1024:.1f} "
        f"-> {after / 1024:.1f} MiB, {out['kib_per_conn']:.1f} KiB per connection ({took:.1f} s)"
    )
    return out


# -- command line -----------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description="Chatzilla load generator (SockJS websocket, protocol v1).")
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000/ (loopback only)")
    parser.add_argument("scenario", choices=["fanout", "storm", "memory"])
    parser.add_argument("--receivers", type=int, default=100)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        default=[],
        help="offered messages/s over all senders (repeatable)",
    )
    parser.add_argument("--flat", action="store_true", help="also run as fast as acks allow")
    parser.add_argument("--window", type=int, default=4, help="messages in flight per sender when --flat")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="receiver processes")
    parser.add_argument(
        "--pid",
        type=int,
        help="server pid, for its CPU and RSS (memory needs it, and a "
        "freshly started server: memory freed by earlier clients is reused)",
    )
    parser.add_argument("--room-size", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.scenario == "fanout":
        runs = [("rate", r) for r in args.rate] + (
            [("flat", args.window)] if args.flat or not args.rate else []
        )
        result = fanout(
            args.url,
            args.receivers,
            runs,
            duration=args.duration,
            senders=args.senders,
            workers=args.workers,
            server_pid=args.pid,
        )
    elif args.scenario == "storm":
        result = join_storm(args.url, args.receivers, workers=args.workers, server_pid=args.pid)
    else:
        if not args.pid:
            parser.error("memory needs --pid of the server")
        result = idle_memory(
            args.url, args.receivers, args.pid, room_size=args.room_size, workers=args.workers
        )
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        print()


if __name__ == "__main__":
    main()
