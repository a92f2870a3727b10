"""Run every benchmark scenario against three servers side by side; write docs/performance.md.

The servers, each started fresh for every scenario on a free loopback port:

- ``chatzilla``: ours, ``python -m chatzilla`` (durable SQLite history when
  this build has ``--db``);
- ``floor``: bench/floor_server.py, the straightforward sockjs-tornado
  broadcast server;
- ``node``: bench/node/server.js, the npm ``sockjs`` reference server.

The scenarios (bench/loadgen.py does the talking):

- fan-out: N joined receivers and 5 senders in one room, at fixed offered
  rates and as fast as acknowledgements allow (``--window`` messages in
  flight per sender), with a probe that sends a message every 100 ms and times its ack;
- join storm: N clients connect and join at the same instant;
- idle memory: server RSS growth per idle joined connection;
- long room (Chatzilla alone, bench/long_room.py): acknowledgements a second
  and join / catch-up latency in a room of 1,000,000 messages against an
  empty room.

    .venv/bin/python bench/run.py            # the full run (about 6 minutes), writes docs/performance.md
    .venv/bin/python bench/run.py --quick    # 100 clients, short runs, prints only (about 1 minute)

Scenarios run one after another, each against all servers in turn, so load
from elsewhere on the machine spreads over the servers alike. Everything
stays on 127.0.0.1 and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import loadgen

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
SERVERS = ("chatzilla", "floor", "node")
LABELS = {"chatzilla": "Chatzilla", "floor": "floor (sockjs-tornado)", "node": "Node sockjs"}
READY = re.compile(r"http://(127\.0\.0\.1|localhost):(\d+)/")
SETTLE_BUDGET = 120.0  # seconds a whole run may spend waiting for a quiet machine


# -- servers ----------------------------------------------------------------------


try:
    _PRCTL = ctypes.CDLL(None).prctl  # looked up here: the forked child only calls it
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if run.py dies, so no server outlives a killed run."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """One server subprocess on a free loopback port; stderr and later stdout go to a log file."""

    def __init__(
        self,
        name: str,
        tmp: Path,
        tag: str,
        chatzilla_db: bool,
        checkout: Path = ROOT,
        flags: tuple[str, ...] = (),
    ) -> None:
        """``name`` is one of :data:`SERVERS`; ``checkout``: the Chatzilla
        to run (another one, to compare builds side by side), with these
        ``flags`` besides the bench's own."""
        self.name = name
        self.log_path = tmp / f"{name}-{tag}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATZILLA_") and k != "PORT"}
        if name == "chatzilla":
            # Every generated client comes from 127.0.0.1 and the senders
            # send flat out: the per-address and flood limits are lifted so
            # the figures are the server's, not its limits'.
            cmd = [
                PYTHON,
                "-m",
                "chatzilla",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--log-level",
                "WARNING",
                "--rate-limit",
                "0",
                "--max-connections-per-address",
                "100000",
                # The idle-memory crowd of 5,000 is in rooms of 100: 50
                # rooms from one address (the default allows 20).
                "--max-rooms-per-address",
                "100000",
                # Load tests speak protocol 1: anyone joins as any address.
                "--auth",
                "open",
            ]
            if chatzilla_db:
                cmd += ["--storage", "sqlite", "--db", str(tmp / f"bench-{tag}.db")]
            cmd += flags
        elif name == "floor":
            cmd = [PYTHON, str(BENCH / "floor_server.py"), "--host", "127.0.0.1", "--port", "0"]
        else:
            cmd = ["node", str(BENCH / "node" / "server.js"), "0"]
        self.log = open(self.log_path, "w")  # noqa: SIM115 (open as long as the server runs)
        self.proc = subprocess.Popen(
            cmd,
            cwd=checkout if name == "chatzilla" else ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid
        line = self._first_line(timeout=30.0)
        match = READY.search(line)
        if not match:
            self.stop()
            raise loadgen.ScenarioError(f"{name} did not start: {line.strip()!r}; see {self.log_path}")
        self.url = f"http://127.0.0.1:{match.group(2)}/"
        # Keep draining stdout so a chatty server never blocks on a full pipe.
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()

    def _first_line(self, timeout: float) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return box[0] if box else ""

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "drainer", None) is not None:
            self.drainer.join(5)
        self.log.close()


def chatzilla_has_db() -> bool:
    """Whether this build of Chatzilla has the durable storage flags."""
    out = subprocess.run([PYTHON, "-m", "chatzilla", "--help"], cwd=ROOT, capture_output=True, text=True)
    return "--db" in out.stdout and "--storage" in out.stdout


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    if soft < needed:
        print(f"warning: open files limit {soft} < {needed}; raise `ulimit -n`", file=sys.stderr)
    return soft


def wait_for_quiet(max_wait: float, threshold: float = 0.25) -> tuple[float, float]:
    """Wait up to ``max_wait`` s for the machine to calm down (other processes < ``threshold`` cores).

    Nothing of ours runs meanwhile, so what is busy is someone else's. Returns
    (the load last seen, in cores; the seconds waited).
    """
    t0 = time.time()
    while True:
        machine = loadgen.MachineCpu()
        time.sleep(0.5)
        load = machine.cores_busy()
        if load < threshold or time.time() - t0 >= max_wait:
            return load, time.time() - t0


# -- the plan -------------------------------------------------------------------


def plan(quick: bool, window: int, duration: float | None) -> list[dict]:
    """The scenarios, in order: each has a key, a kind and its parameters."""
    duration = duration or (2.0 if quick else 5.0)
    fanouts = [(100, [("rate", 100), ("rate", 500), ("flat", window)])]
    if not quick:
        fanouts.append((1000, [("rate", 10), ("rate", 50), ("flat", window)]))
    steps = [
        {"key": f"fanout{n}", "kind": "fanout", "n": n, "runs": runs, "duration": duration}
        for n, runs in fanouts
    ]
    storm = 100 if quick else 1000
    steps.append({"key": f"storm{storm}", "kind": "storm", "n": storm})
    for n in [100] if quick else [1000, 5000]:
        steps.append({"key": f"memory{n}", "kind": "memory", "n": n})
    # Chatzilla alone (the others keep no history): bench/long_room.py.
    steps.append({"key": "longroom", "kind": "longroom", "messages": 100_000 if quick else 1_000_000})
    return steps


def run_long_room(step: dict, quick: bool) -> dict:
    """bench/long_room.py: an empty room against one seeded with
    ``step["messages"]``, side by side (it starts its own servers)."""
    seconds, joins = ("3", "50") if quick else ("10", "200")
    done = subprocess.run(
        [
            PYTHON,
            str(BENCH / "long_room.py"),
            "--json",
            "--messages",
            str(step["messages"]),
            "--seconds",
            seconds,
            "--joins",
            joins,
        ],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout)


def long_room_lines(results: dict, steps: list[dict]) -> list[str]:
    """The long room's table and its targets, or nothing when not measured."""
    step = next((s for s in steps if s["kind"] == "longroom"), None)
    r = results.get("chatzilla", {}).get("longroom")
    if step is None or not isinstance(r, dict):
        return []
    if "error" in r:
        return [f"Long room: not measured ({r['error']})."]
    empty, long = r["empty"], r["long"]
    lines = [
        f"| metric (SQLite) | empty room | {step['messages']:,} messages | long/empty |",
        "|---|---:|---:|---:|",
    ]
    for key, label in (
        ("acks_per_s", "acknowledgements/s"),
        ("join_p50_ms", "join p50 (ms)"),
        ("join_p99_ms", "join p99 (ms)"),
        ("catchup_p50_ms", "catch-up p50 (ms)"),
        ("catchup_p99_ms", "catch-up p99 (ms)"),
    ):
        lines.append(f"| {label} | {empty[key]:,.1f} | {long[key]:,.1f} | {long[key] / empty[key]:.2f} |")
    ok_rate = r["ratio"] >= 0.9
    ok_join = long["join_p99_ms"] < 50
    lines += [
        "",
        f"- long room: acknowledgements at {r['ratio']:.2f}x the empty room's rate "
        f"(target >= 0.9x): {'met' if ok_rate else 'NOT met'}",
        f"- long room: join p99 {long['join_p99_ms']:.1f} ms (target < 50 ms): "
        f"{'met' if ok_join else 'NOT met'}",
    ]
    return lines


def run_step(step: dict, server: Server, args) -> dict:
    kind = step["kind"]
    if kind == "fanout":
        return loadgen.fanout(
            server.url,
            step["n"],
            step["runs"],
            duration=step["duration"],
            workers=args.workers,
            server_pid=server.pid,
            drain_timeout=20.0 if args.quick else 60.0,
        )
    if kind == "storm":
        return loadgen.join_storm(server.url, step["n"], workers=args.workers, server_pid=server.pid)
    return loadgen.idle_memory(server.url, step["n"], server.pid, room_size=100, workers=args.workers)


# -- the table ------------------------------------------------------------------


def ms(v) -> str:
    return "-" if v is None else (f"{v * 1000:.1f}" if v < 10 else f"{v * 1000:,.0f}")


def fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if unit == "ms":
        return ms(v)
    if unit == "/s":
        return f"{v:,.0f}"
    if unit == "s":
        return f"{v:.2f}"
    if unit == "KiB":
        return f"{v:.1f}"
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def ratio(a, b) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return "-"
    return f"{a / b:.2f}"


def run_label(r: dict) -> str:
    if r["mode"] == "rate":
        return f"offered {r['value']:g} msg/s"
    return f"as fast as acks allow (window {r['value']:g}/sender)"


def rows(step: dict, results: dict) -> list[tuple[str, str, str, dict]]:
    """(scenario, metric, unit or direction, {server: value}) rows for one step."""
    out = []
    key = step["key"]
    per = {s: results.get(s, {}).get(key) for s in SERVERS}
    if step["kind"] == "fanout":
        for i, (mode, value) in enumerate(step["runs"]):
            runs = {
                s: (p["runs"][i] if isinstance(p, dict) and len(p.get("runs", [])) > i else p)
                for s, p in per.items()
            }
            title = f"fan-out to {step['n']} receivers, " + (
                f"offered {value:g} msg/s ({value * step['n']:,.0f} deliveries/s)"
                if mode == "rate"
                else f"as fast as acks allow (window {value:g} per sender)"
            )

            def pick(fn, runs=runs):
                return {
                    s: (fn(r) if isinstance(r, dict) and "mode" in r else _err(r)) for s, r in runs.items()
                }

            out.append((title, "deliveries/s", "/s", pick(lambda r: r["deliveries_per_s"])))
            for q in ("p50", "p99", "max"):
                out.append((title, f"latency {q} (ms)", "ms", pick(lambda r, q=q: r["latency"][q])))
            out.append((title, "lost deliveries", "n", pick(lambda r: r["lost"])))
            if mode == "flat":
                out.append((title, "probe ack p99 (ms)", "ms", pick(lambda r: r["probe"]["p99"])))
                out.append((title, "probe ack max (ms)", "ms", pick(lambda r: r["probe"]["max"])))
    elif step["kind"] == "storm":
        title = f"join storm of {step['n']}"
        out.append(
            (
                title,
                "all joined (s)",
                "s",
                {
                    s: (
                        r["all_joined_s"]
                        if r["all_joined_s"] is not None
                        else f"{r['joined']}/{r['n']} joined"
                    )
                    if isinstance(r, dict) and "n" in r
                    else _err(r)
                    for s, r in per.items()
                },
            )
        )
        out.append(
            (
                title,
                "TCP connects > 0.9 s",
                "n",
                {
                    s: r["slow_connects"] if isinstance(r, dict) and "n" in r else _err(r)
                    for s, r in per.items()
                },
            )
        )
    elif step["kind"] == "memory":
        title = f"idle memory, {step['n']} connections"
        out.append(
            (
                title,
                "KiB per connection",
                "KiB",
                {
                    s: (
                        r.get("kib_per_conn", r.get("skipped"))
                        if isinstance(r, dict) and "n" in r
                        else _err(r)
                    )
                    for s, r in per.items()
                },
            )
        )
    return out


def _err(r) -> str:
    return "error" if isinstance(r, dict) and "error" in r else "-"


def table(steps: list[dict], results: dict) -> str:
    lines = [
        "| scenario | metric | Chatzilla | floor | Node | ours/Node | ours/floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    last_title = None
    for step in steps:
        for title, metric, unit, values in rows(step, results):
            shown = title if title != last_title else ""
            last_title = title
            ours = values["chatzilla"]
            no_ratio = unit == "n"
            lines.append(
                f"| {shown} | {metric} | {fmt(ours, unit)} | {fmt(values['floor'], unit)} | "
                f"{fmt(values['node'], unit)} | {'-' if no_ratio else ratio(ours, values['node'])} | "
                f"{'-' if no_ratio else ratio(ours, values['floor'])} |"
            )
    return "\n".join(lines)


def cpu_table(steps: list[dict], results: dict) -> str:
    lines = [
        "| scenario | server | generator CPU (per process, % of a core) | generator µs/delivery "
        "| frames/read | server CPU | machine | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for step in steps:
        if step["kind"] in ("memory", "longroom"):
            continue
        for s in SERVERS:
            r = results.get(s, {}).get(step["key"])
            if not isinstance(r, dict) or "error" in r:
                continue
            entries = (
                [(f"{step['n']} receivers, {run_label(x)}", x) for x in r["runs"]]
                if step["kind"] == "fanout"
                else [(f"join storm of {step['n']}", r)]
            )
            for title, x in entries:
                gen = ", ".join(f"{k} {v:.0%}" for k, v in x["gen_cpu"].items())
                server = "-" if x["server_cpu"] is None else f"{x['server_cpu']:.0%}"
                per = x.get("gen_us_per_delivery")
                fpr = x.get("frames_per_read")
                lines.append(
                    f"| {title} | {LABELS[s]} | {gen} | {'-' if per is None else f'{per:.1f}'} | "
                    f"{'-' if not fpr else f'{fpr:.2f}'} | {server} | {x.get('machine_cpu', 0):.0%} | "
                    f"{x['verdict']} |"
                )
    return "\n".join(lines)


def memory_table(steps: list[dict], results: dict) -> str:
    lines = [
        "| connections | server | rooms | RSS before (MiB) | RSS after (MiB) | KiB per connection |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for step in steps:
        if step["kind"] != "memory":
            continue
        for s in SERVERS:
            r = results.get(s, {}).get(step["key"])
            if isinstance(r, dict) and "kib_per_conn" in r:
                rooms = f"of {r['room_size']}" if r["rooms"] else "one (no `room` support)"
                lines.append(
                    f"| {r['n']} | {LABELS[s]} | {rooms} | {r['rss_before_kib'] / 1024:.1f} | "
                    f"{r['rss_after_kib'] / 1024:.1f} | {r['kib_per_conn']:.1f} |"
                )
    return "\n".join(lines)


def generator_cost(steps: list[dict], results: dict) -> str | None:
    """One line on what the generator costs per delivery, from the fastest fan-out run."""
    runs = [
        r
        for s in SERVERS
        for step in steps
        if step["kind"] == "fanout"
        for r in (results.get(s, {}).get(step["key"]) or {}).get("runs", [])
        if r.get("gen_us_per_delivery")
    ]
    if not runs:
        return None
    fastest = max(runs, key=lambda r: r["deliveries_per_s"])
    per = fastest["gen_us_per_delivery"]
    return (
        f"- The generator spends about {per:.1f} µs of CPU per delivery (in its fastest run, "
        f"{fastest['deliveries_per_s']:,.0f} deliveries/s), most of it in the kernel's socket reads; "
        f"so {100_000 * per / 1e6:.2f} cores for 100,000 deliveries/s. On a 2-core machine a server "
        "that needs a whole core of its own meets the generator's share there: a run marked MACHINE "
        "SATURATED measured the server with less than a full core."
    )


def targets(results: dict, steps: list[dict]) -> list[str]:
    """Chatzilla against the issue's targets, where this run measured them."""
    ours = results.get("chatzilla", {})
    out = []

    def mark(ok) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    f1000 = ours.get("fanout1000")
    if isinstance(f1000, dict) and "runs" in f1000:
        flat = next((r for r in f1000["runs"] if r["mode"] == "flat"), None)
        node = results.get("node", {}).get("fanout1000", {})
        floor = results.get("floor", {}).get("fanout1000", {})
        nflat = next((r for r in node.get("runs", []) if r["mode"] == "flat"), None)
        fflat = next((r for r in floor.get("runs", []) if r["mode"] == "flat"), None)
        if flat and nflat and fflat:
            ok = (
                flat["deliveries_per_s"] >= nflat["deliveries_per_s"]
                and flat["deliveries_per_s"] >= 4 * fflat["deliveries_per_s"]
            )
            out.append(
                f"- fan-out to 1000 as fast as possible >= Node and >= 4x floor: {mark(ok)} "
                f"({flat['deliveries_per_s']:,.0f}/s vs Node {nflat['deliveries_per_s']:,.0f}/s, "
                f"floor {fflat['deliveries_per_s']:,.0f}/s)"
            )
        r50 = next((r for r in f1000["runs"] if r["mode"] == "rate" and r["value"] == 50), None)
        if r50:
            ok = r50["latency"]["p99"] is not None and r50["latency"]["p99"] < 0.1 and r50["lost"] == 0
            out.append(
                f"- offered 50 msg/s to 1000 receivers: p99 < 100 ms, nothing lost: {mark(ok)} "
                f"(p99 {ms(r50['latency']['p99'])} ms, lost {r50['lost']})"
            )
        if flat:
            p = flat["probe"]
            ok = p["max"] is not None and p["max"] < 0.1
            out.append(
                f"- a message arriving while saturated is acknowledged within 100 ms: {mark(ok)} "
                f"(probe ack p50 {ms(p['p50'])}, p99 {ms(p['p99'])}, max {ms(p['max'])} ms)"
            )
    storm = ours.get("storm1000")
    if isinstance(storm, dict) and "n" in storm:
        t = storm["all_joined_s"]
        out.append(
            f"- join storm of 1000 all joined < 3 s: {mark(t is not None and t < 3)} "
            f"({'-' if t is None else f'{t:.2f} s'})"
        )
    mem = ours.get("memory1000")
    if isinstance(mem, dict) and "kib_per_conn" in mem:
        out.append(
            f"- idle memory < 20 KiB per connection at 1000: {mark(mem['kib_per_conn'] < 20)} "
            f"({mem['kib_per_conn']:.1f} KiB)"
        )
    return out


def caution(steps: list[dict], results: dict) -> list[str]:
    """A warning for the top of the page when the machine or the generator limited runs."""
    runs = [
        x
        for step in steps
        if step["kind"] not in ("memory", "longroom")
        for s in SERVERS
        for r in [results.get(s, {}).get(step["key"])]
        if isinstance(r, dict) and "error" not in r
        for x in r.get("runs", [r])
    ]
    limited = [x for x in runs if x["verdict"].startswith(("MACHINE", "GENERATOR"))]
    if not limited:
        return []
    return [
        f"> **Caution:** in {len(limited)} of {len(runs)} runs the machine (or the generator) was "
        "saturated, often by other processes: those figures understate the servers. See the notes.",
        "",
    ]


def notes(steps: list[dict], results: dict, chatzilla_db: bool) -> list[str]:
    out = []
    saturated, machine, slow = [], [], []
    for step in steps:
        for s in SERVERS:
            r = results.get(s, {}).get(step["key"])
            if not isinstance(r, dict):
                continue
            if "error" in r:
                out.append(f"- {LABELS[s]}, {step['key']}: ERROR {r['error']}")
                continue
            entries = r.get("runs", [r]) if step["kind"] not in ("memory", "longroom") else []
            for x in entries:
                where = f"{LABELS[s]}, {step['key']}" + (f", {run_label(x)}" if "mode" in x else "")
                if x["verdict"].startswith("GENERATOR"):
                    saturated.append(f"{where}: {x['verdict']}")
                elif x["verdict"].startswith("MACHINE"):
                    machine.append(f"{where}: {x['verdict']}")
                if x.get("errors"):
                    out.append(f"- {where}: error frames {x['errors']}")
                if x.get("failures"):
                    out.append(f"- {where}: failed connections {x['failures']}")
                if x.get("dups") or x.get("stale") or x.get("gaps"):
                    out.append(
                        f"- {where}: {x.get('gaps', 0)} sequence gaps, {x.get('dups', 0)} duplicate or "
                        f"reordered and {x.get('stale', 0)} stray deliveries"
                    )
                if (x.get("sender_lag_max") or 0) > 0.05:
                    out.append(
                        f"- {where}: the sender fell up to {x['sender_lag_max'] * 1000:.0f} ms behind "
                        "its schedule (it caught up by sending the late messages at once)"
                    )
                if x.get("unacked"):
                    out.append(f"- {where}: {x['unacked']} messages never acknowledged")
                if x.get("closed_by_server"):
                    out.append(f"- {where}: the server closed {x['closed_by_server']} connections")
                if x.get("slow_connects"):
                    slow.append(f"{LABELS[s]} {x['slow_connects']} of {x['n']}")
            if r.get("background_cores", 0) >= 0.25:
                out.append(
                    f"- {LABELS[s]}, {step['key']}: started while other processes used "
                    f"{r['background_cores']:.0%} of a core"
                )
            if step["kind"] == "memory" and r.get("skipped"):
                out.append(f"- {LABELS[s]}, {step['key']}: skipped ({r['skipped']})")
            elif step["kind"] == "memory" and not r.get("rooms", True):
                out.append(
                    f"- {LABELS[s]}, {step['key']}: the server ignores `room`, so all "
                    f"{r['n']} connections joined one room"
                )
    if saturated:
        out.insert(
            0,
            "- **The generator saturated** (a generator process used >= 90% of a core), so these "
            "figures are the generator's limit, not the server's:\n  - " + "\n  - ".join(saturated),
        )
    else:
        out.insert(
            0,
            "- The generator never saturated: every generator process stayed below 90% of a core "
            "in every run.",
        )
    if machine:
        out.insert(
            1,
            "- The machine was saturated (>= 90% of all cores busy; the generator and the server "
            "compete for 2 cores, and so does anything else running): figures are lower bounds:\n  - "
            + "\n  - ".join(machine),
        )
    if slow:
        out.append(
            "- Join storm, TCP connects that took over 0.9 s: " + ", ".join(slow) + ". The server's "
            "listen queue was full, so the kernel dropped their SYN and the client retried 1 s later "
            "(then 3 s, 7 s): Tornado's default backlog is 128, Node's 511."
        )
    cost = generator_cost(steps, results)
    if cost:
        out.insert(1, cost)
    if chatzilla_db is False:
        out.append(
            "- This Chatzilla build has no `--storage`/`--db` flags: it ran with in-memory history, "
            "not the durable SQLite history the targets ask for."
        )
    return out


def machine_lines() -> list[str]:
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pyver = version(
        [
            PYTHON,
            "-c",
            "import sys, tornado, importlib.metadata as m; "
            "print(sys.version.split()[0], '/ Tornado', tornado.version, "
            "'/ sockjs-tornado', m.version('sockjs-tornado'))",
        ]
    )
    sockjs_node = "?"
    try:
        sockjs_node = json.loads((BENCH / "node" / "node_modules" / "sockjs" / "package.json").read_text())[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        pass
    return [
        f"- Machine: `{version(['uname', '-a'])}`",
        f"- CPU: {os.cpu_count()} cores, {model}; memory {mem}",
        f"- Python {pyver}",
        f"- Node {version(['node', '--version'])} / npm sockjs {sockjs_node}",
    ]


def document(steps, results, args, started: float, chatzilla_db: bool, tbl: str) -> str:
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    storage = "durable SQLite history (`--storage sqlite --db`)" if chatzilla_db else "in-memory history"
    parts = [
        "# Performance",
        "",
        f"Measured {when} by `bench/run.py{' --quick' if args.quick else ''}` (`make bench`), "
        f"{(time.time() - started) / 60:.1f} minutes.",
        "",
        *caution(steps, results),
        *machine_lines(),
        "",
        "Servers, each started fresh for every scenario, one process each: "
        f"**Chatzilla** (`python -m chatzilla`, {storage}); "
        "the **floor**, bench/floor_server.py, the straightforward "
        "sockjs-tornado broadcast (one `send` per recipient, no storage); "
        "and **Node**, bench/node/server.js, "
        "the npm `sockjs` reference server. All three speak the same subset of the protocol "
        "(shared/PROTOCOL.md, version 1) over SockJS's WebSocket transport, which bench/loadgen.py speaks "
        "as sockjs-client does.",
        "",
        "Scenarios: *fan-out*: N receivers and 5 senders joined to one room; the senders send at a fixed "
        f"offered rate (open loop), or as fast as acknowledgements allow with {args.window} messages in "
        "flight each (so latency there is mostly queueing: in-flight messages over throughput), while a "
        "probe sends one message every 100 ms and times its acknowledgement. Latency is from the "
        "sender's write to the receiver's read (both on this machine's clock); deliveries/s counts every "
        "message received by every receiver, from the first send to the last receipt; lost = acknowledged "
        "messages times receivers, minus deliveries. *Join storm*: N clients connect and join at the same "
        "instant; the time until the last has its `joined`. *Idle memory*: server RSS "
        "(/proc/PID/status VmRSS) after N idle joined connections (rooms of 100, via the `room` "
        "extension, where the server has it) minus RSS before them, over N.",
        "",
        "Ratios are Chatzilla's figure over the other's: above 1 is better for deliveries/s, below 1 is "
        "better for latency, time and memory.",
        "",
        tbl,
        "",
        "## Targets (Chatzilla)",
        "",
        *(targets(results, steps) or ["- none measured by this run (the full run measures them)"]),
        "",
        "## The generator",
        "",
        "Receivers are spread over "
        f"{args.workers} worker processes, senders and the probe live in one more; each reports its own CPU "
        "time (`time.process_time`) over the run (sending or receiving, and draining). A generator process "
        "at >= 90% of a core means the generator, not the server, may have set the pace; the server's CPU "
        "and the whole machine's come from /proc. Receiving costs the generator one system call per read "
        "whatever the language, so a busy receiver worker (>= 25% of a core) naps 1 ms between polls to "
        "read several frames at a time (frames/read below): fewer reads, at most 1 ms more latency, and "
        "only under heavy load.",
        "",
        cpu_table(steps, results),
        "",
        "## Idle memory",
        "",
        memory_table(steps, results),
        "",
        "## Long room",
        "",
        "bench/long_room.py, Chatzilla alone: the same server build on an empty SQLite file and on one "
        "seeded (straight into the file) with a room of that many messages over three months. Five "
        "senders, 4 messages in flight each, flood control off, every message with a `ref`, for 10 s; "
        "then 200 joins one after another, each on a fresh connection (`join` to `joined`), and 200 "
        "catch-ups (`since` 100 messages before the newest).",
        "",
        *(long_room_lines(results, steps) or ["Not measured by this run."]),
        "",
        "## Notes",
        "",
        *notes(steps, results, chatzilla_db),
        "",
    ]
    return "\n".join(parts)


# -- main -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="100 clients, 2 s runs, no 1000/5000 scenarios; prints only unless --out",
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated subset of " + ",".join(SERVERS)
    )
    parser.add_argument("--only", help="comma-separated scenario keys (e.g. fanout1000,storm1000)")
    parser.add_argument("--workers", type=int, default=2, help="receiver processes of the generator")
    parser.add_argument(
        "--window",
        type=int,
        default=4,
        help="messages in flight per sender when sending as fast as acks allow (default 4)",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of sending per fan-out run (default 5, quick 2)"
    )
    parser.add_argument("--out", help="markdown file to write (default docs/performance.md for the full run)")
    parser.add_argument("--json", help="also write the raw results as JSON here")
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="before each run, wait up to this many seconds for other processes to leave the "
        "CPU alone (at most 120 s in all; 0 to never wait)",
    )
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    if unknown := set(servers) - set(SERVERS):
        parser.error(f"unknown servers {sorted(unknown)}")
    if "node" in servers and not (BENCH / "node" / "node_modules" / "sockjs").is_dir():
        parser.error("bench/node/node_modules is missing: run `npm ci --prefix bench/node` (make bench does)")
    if "node" in servers and not shutil.which("node"):
        parser.error("node is not on PATH")
    out = args.out or (None if args.quick else str(ROOT / "docs" / "performance.md"))

    steps = plan(args.quick, args.window, args.duration)
    if args.only:
        keys = set(args.only.split(","))
        steps = [s for s in steps if s["key"] in keys]
    biggest = max((s.get("n", 0) for s in steps), default=0)
    raise_fd_limit(biggest + 200)
    chatzilla_db = chatzilla_has_db() if "chatzilla" in servers else None
    started = time.time()
    results: dict = {s: {} for s in SERVERS}
    settled = 0.0
    history = {True: "; Chatzilla history: SQLite", False: "; Chatzilla history: in memory", None: ""}
    print(
        f"# bench: {len(steps)} scenarios x {len(servers)} servers{' (quick)' if args.quick else ''}"
        f"{history[chatzilla_db]}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="chatzilla-bench-") as tmp:
        for step in steps:
            if step["kind"] == "longroom":
                continue  # Chatzilla alone, below
            for name in servers:
                print(f"== {step['key']} / {LABELS[name]}", flush=True)
                server = None
                budget = min(args.settle, max(0.0, SETTLE_BUDGET - settled))
                background, waited = wait_for_quiet(budget)
                settled += waited
                if waited >= 1:
                    print(
                        f"    waited {waited:.0f} s for a quieter machine; "
                        f"others use {background:.0%} of a core",
                        flush=True,
                    )
                try:
                    server = Server(name, Path(tmp), step["key"], chatzilla_db)
                    results[name][step["key"]] = run_step(step, server, args)
                    results[name][step["key"]]["background_cores"] = background
                except Exception as exc:  # one failed scenario must not lose the others' figures
                    text = (
                        str(exc) if isinstance(exc, loadgen.ScenarioError) else f"{type(exc).__name__}: {exc}"
                    )
                    print(f"    ERROR: {text}", flush=True)
                    results[name][step["key"]] = {"error": text}
                finally:
                    if server is not None:
                        server.stop()
                        if server.proc.returncode not in (0, -signal.SIGTERM):
                            tail = Path(server.log_path).read_text()[-2000:]
                            print(
                                f"    {name} exited with {server.proc.returncode}; log tail:\n{tail}",
                                flush=True,
                            )
                time.sleep(0.5)
        long_steps = [s for s in steps if s["kind"] == "longroom"]
        if long_steps and "chatzilla" in servers:
            print(f"== longroom / {LABELS['chatzilla']} (bench/long_room.py)", flush=True)
            results["chatzilla"]["longroom"] = run_long_room(long_steps[0], args.quick)
    tbl = table(steps, results)
    print()
    print(tbl)
    for line in long_room_lines(results, steps):
        print(line)
    print()
    for line in targets(results, steps):
        print(line)
    for line in notes(steps, results, chatzilla_db):
        print(line)
    print(f"\n# {(time.time() - started) / 60:.1f} minutes")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(document(steps, results, args, started, chatzilla_db, tbl))
        print(f"wrote {out}")
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": steps, "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
