"""The crowd: 10,000 connections on one process, against Node's sockjs and the floor.

1,000 people with 10 tabs each (10,000 SockJS-WebSocket connections, every
one a receiver) in one room, flood control and the per-address limit off.
For each server, started fresh for each part:

- *idle memory*: server RSS growth over the 10,000 connections joined in
  batches and then left idle, per connection;
- *join storm*: all 10,000 connect and join at the same instant; the time
  until the last has its ``joined`` (and p50 / p99 of the joins);
- *fan-out* (on the crowd the storm left): 5 senders send 5 messages a
  second in all to the room (50,000 deliveries a second) for ``--seconds``;
  latency from send to receipt (p50 / p99 / max), deliveries lost, the
  server's CPU per delivery, and the acknowledgements meanwhile: the
  senders' own, and a probe's in a room of its own (one message every
  100 ms), which times how long the server's loop keeps a sender waiting.

Every generator process reports its CPU: one at >= 90% of a core is
flagged, so a saturated generator is not mistaken for the server's limit.

    .venv/bin/python bench/crowd.py                          # all three servers, prints the table
    .venv/bin/python bench/crowd.py --write docs/performance.md   # and puts it in that page (make bench)
    .venv/bin/python bench/crowd.py --servers chatzilla,before --before ../old-checkout --rounds 2

``--protocol 2`` runs Chatzilla under ``--auth link``: every person is a
signed-in person (a bot token of theirs put in the server's database before
it starts), frames name people as ``{id, name, avatar}``, and presence
changes of one loop turn may share a frame. (Node's server and the floor
speak the same frames whatever the protocol.)

``--before DIR`` adds the server ``before``: ``python -m chatzilla`` from
another checkout (``git worktree add --detach DIR COMMIT``; it needs a
``node_modules``, a link to this checkout's will do), to measure a change
side by side; ``--json FILE`` keeps the figures and ``--from-json FILE``
shows them again (``--write`` puts them in a page); ``--rounds`` repeats
everything, servers taking turns in a different order each round, so that
load from elsewhere on the shared machine falls on all of them alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import loadgen
import run
from ack_rate import write_section
from run import LABELS, ROOT, Server, chatzilla_has_db, raise_fd_limit

SERVERS = ("chatzilla", "before", "floor", "node")
NAMES = {**LABELS, "before": "Chatzilla (before)"}
#: A request's head must come within 10 s by default, counted from accept
#: (against slowloris). A storm of 10,000 on a machine shared with other
#: work can leave the head of a connection accepted unread that long, and
#: it is closed: that would measure the defence, not the joining. (Node's
#: server and the floor have no such timeout.)
CHATZILLA_FLAGS = ("--header-timeout", "120")


def load_average() -> float:
    return os.getloadavg()[0]


def seed_people(db: Path, people: int) -> None:
    """Make the load clients signed-in people of the server that will open
    ``db``: one person (and bot token, :func:`loadgen.bench_token`) for every
    address the crowd's generators use, put in before the server starts."""
    from chatzilla.backends.sqlite import connect, migrate
    from chatzilla.signin import digest

    emails = [f"{prefix}{i}@load.test" for prefix in ("idle", "crowd") for i in range(people + 20)]
    emails += [f"sender{i}@load.test" for i in range(10)] + ["probe@load.test"]
    con = connect(str(db))
    try:
        migrate(con)
        con.execute("BEGIN")
        for email in emails:
            person = "p" + hashlib.sha256(email.encode()).hexdigest()[:12]
            name = "Load " + email.split("@")[0]
            con.execute("INSERT INTO people (id, email, name) VALUES (?, ?, ?)", (person, email, name))
            con.execute(
                "INSERT INTO bot_tokens (digest, person, label, created) VALUES (?, ?, 'bench', ?)",
                (digest(loadgen.bench_token(email)), person, time.time()),
            )
        con.execute("COMMIT")
    finally:
        con.close()


def idle_memory(url: str, pid: int, n: int, people: int, workers: int, protocol: int = 1, log=print) -> dict:
    """RSS growth per connection of the crowd joined 500 at a time, then idle."""
    with loadgen.LoadGen(url, workers=workers, prefix="idle", protocol=protocol) as gen:
        # The server's lazy paths warmed up first (as run.py's idle memory does).
        gen.connect(10, room_size=1, room_prefix="warm", batch=10)
        gen.ask(gen.receivers, "close_all")
        time.sleep(1.0)
        before = loadgen.read_rss_kib(pid)
        joined = gen.connect(n, batch=500, timeout=180.0, people=people)
        if joined["joined"] != n:
            raise loadgen.ScenarioError(f"only {joined['joined']} of {n} joined: {joined['failures']}")
        gen.quiesce(quiet=1.0, timeout=120.0)
        time.sleep(1.0)
        after = loadgen.read_rss_kib(pid)
    out = {"rss_before_kib": before, "rss_after_kib": after, "kib_per_conn": (after - before) / n}
    log(
        f"    idle memory: RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
        f"{out['kib_per_conn']:.1f} KiB per connection"
    )
    return out


def storm_and_fanout(
    url: str,
    pid: int,
    n: int,
    people: int,
    *,
    rate: float,
    seconds: float,
    workers: int,
    storm_timeout: float,
    protocol: int = 1,
    fanout: bool = True,
    log=print,
) -> dict:
    """The join storm of ``n`` (``people`` of them), then (``fanout``) the fan-out to them all."""
    out: dict = {}
    with loadgen.LoadGen(url, workers=workers, prefix="crowd", protocol=protocol) as gen:
        cpu0 = loadgen.read_cpu_ticks(pid)
        machine = loadgen.MachineCpu()
        storm = gen.connect(n, storm=True, timeout=storm_timeout, people=people)
        cpu1 = loadgen.read_cpu_ticks(pid)
        times = storm["join_times"]
        wall = max(storm["wall"], 1e-9)
        gen_cpu = {f"receiver{i + 1}": c / wall for i, c in enumerate(storm["cpu"])}
        server_cpu = (cpu1 - cpu0) / wall
        machine_cores = machine.cores_busy()
        out["storm"] = {
            "joined": storm["joined"],
            "all_joined_s": times[-1] if len(times) == n else None,
            "join": loadgen.percentiles(times),
            "slow_connects": sum(t > 0.9 for t in storm["connect_times"]),
            "failures": storm["failures"],
            "gen_cpu": gen_cpu,
            "server_cpu": server_cpu,
            "server_cpu_s": cpu1 - cpu0,
            "machine_cpu": machine_cores,
            "verdict": loadgen.cpu_verdict(gen_cpu, server_cpu, machine_cores),
        }
        s = out["storm"]
        all_s = "-" if s["all_joined_s"] is None else f"{s['all_joined_s']:.2f} s"
        log(
            f"    join storm {n}: {s['joined']} joined, all in {all_s}, p50 "
            f"{s['join']['p50'] or 0:.2f} s p99 {s['join']['p99'] or 0:.2f} s; "
            f"{s['slow_connects']} TCP connects > 0.9 s; failures {s['failures'] or 'none'}; "
            f"server CPU {server_cpu:.0%}, gen [{' '.join(f'{v:.0%}' for v in gen_cpu.values())}]: "
            f"{s['verdict']}"
        )
        if not fanout:
            return out
        if storm["joined"] != n:
            out["fanout"] = {"skipped": f"only {storm['joined']} of {n} joined"}
            return out
        gen.quiesce(quiet=1.0, timeout=120.0)  # the storm's presence frames all read
        gen.connect_senders(probe=True, probe_room="probe")
        gen.sync(token=1, timeout=120.0)
        run = loadgen.measure(
            gen,
            n,
            2,
            "rate",
            rate,
            duration=seconds,
            probe_interval=0.1,
            server_pid=pid,
            drain_timeout=60.0,
            probe_apart=True,
        )
        run["server_us_per_delivery"] = (
            1e6 * run["server_cpu_s"] / run["received"]
            if run["received"] and run["server_cpu_s"] is not None
            else None
        )
        out["fanout"] = run
        log("    " + loadgen.describe_run(run) + f"; sender acks p99 {fmt_ms(run['ack']['p99'])} ms")
    return out


# -- the table ---------------------------------------------------------------------


def fmt_ms(v) -> str:
    return "-" if v is None else f"{v * 1000:,.0f}" if v >= 0.1 else f"{v * 1000:.1f}"


def median(values: list[float]) -> float | None:
    v = sorted(x for x in values if x is not None)
    return v[len(v) // 2] if v else None


def _whole(r: dict) -> dict:
    """A round's join storm, if every connection joined (a part of one is no figure to compare)."""
    if r["storm"]["all_joined_s"] is None:
        raise KeyError("not every connection joined")
    return r["storm"]


ROWS = [
    # (label, the figure from one round's results, its format)
    ("join storm of {n:,}: all joined (s)", lambda r: r["storm"]["all_joined_s"], "s"),
    ("join storm: join p99 (s)", lambda r: _whole(r)["join"]["p99"], "s"),
    ("join storm: server CPU (% of a core)", lambda r: _whole(r)["server_cpu"], "%"),
    ("join storm: server CPU time (s)", lambda r: _whole(r)["server_cpu_s"], "s"),
    ("join storm: connections joined", lambda r: r["storm"]["joined"], "n"),
    ("fan-out {rate:g} msg/s to {n:,}: deliveries/s", lambda r: r["fanout"]["deliveries_per_s"], "n"),
    ("fan-out: latency p50 (ms)", lambda r: r["fanout"]["latency"]["p50"], "ms"),
    ("fan-out: latency p99 (ms)", lambda r: r["fanout"]["latency"]["p99"], "ms"),
    ("fan-out: latency max (ms)", lambda r: r["fanout"]["latency"]["max"], "ms"),
    ("fan-out: lost deliveries", lambda r: r["fanout"]["lost"], "n"),
    ("fan-out: server CPU per delivery (µs)", lambda r: r["fanout"]["server_us_per_delivery"], "us"),
    ("fan-out: senders' ack p99 (ms)", lambda r: r["fanout"]["ack"]["p99"], "ms"),
    ("fan-out: probe ack p99 (ms), a room of its own", lambda r: r["fanout"]["probe"]["p99"], "ms"),
    ("idle memory (KiB per connection)", lambda r: r["memory"]["kib_per_conn"], "KiB"),
]


def fmt(v, kind: str) -> str:
    """A figure as the table shows it; run.py's units, and "%" and "us"."""
    if v is not None and kind == "%":
        return f"{v:.0%}"
    if v is not None and kind == "us":
        return f"{v:.1f}"
    return run.fmt(v, "/s" if kind == "n" else kind)


def value(rounds: list[dict], get) -> float | None:
    """The median over rounds of one figure (None where a round lacks it)."""
    values = []
    for r in rounds:
        try:
            values.append(get(r))
        except (KeyError, TypeError):
            values.append(None)
    return median(values)


def table(results: dict, servers: list[str], n: int, rate: float) -> list[str]:
    head = "| | " + " | ".join(NAMES[s] for s in servers) + (" | ours/Node |" if "node" in servers else " |")
    lines = [head, "|---|" + "---:|" * (len(servers) + ("node" in servers))]
    for label, get, kind in ROWS:
        values = {s: value(results[s], get) for s in servers}
        cells = [fmt(values[s], kind) for s in servers]
        if "node" in servers:
            ours, node = values.get("chatzilla"), values["node"]
            cells.append(f"{ours / node:.2f}" if ours is not None and node and kind != "n" else "-")
        lines.append(f"| {label.format(n=n, rate=rate)} | " + " | ".join(cells) + " |")
    return lines


def cpu_lines(results: dict, servers: list[str]) -> list[str]:
    lines = [
        "| server | round | part | generator CPU (% of a core, per process) | server CPU | machine "
        "| verdict |",
        "|---|---:|---|---|---:|---:|---|",
    ]
    for s in servers:
        for i, r in enumerate(results[s], start=1):
            for part in ("storm", "fanout"):
                x = r.get(part)
                if not isinstance(x, dict) or "gen_cpu" not in x:
                    continue
                gen = ", ".join(f"{k} {v:.0%}" for k, v in x["gen_cpu"].items())
                lines.append(
                    f"| {NAMES[s]} | {i} | {part} | {gen} | {x['server_cpu']:.0%} | "
                    f"{x['machine_cpu']:.0%} | {x['verdict']} |"
                )
    return lines


def targets(results: dict, servers: list[str]) -> list[str]:
    """Chatzilla's figures against issue 17's targets (and issue 11's storm), where measured."""
    if "chatzilla" not in servers:
        return []
    ours = {label: value(results["chatzilla"], get) for label, get, _ in ROWS}
    node = {label: value(results["node"], get) for label, get, _ in ROWS} if "node" in servers else {}
    storm, p99 = ROWS[0][0], ROWS[7][0]
    lost, sender_ack, probe_ack, memory = ROWS[9][0], ROWS[11][0], ROWS[12][0], ROWS[13][0]

    def mark(ok: bool | None) -> str:
        return "-" if ok is None else ("met" if ok else "NOT met")

    def within(mine, limit: float, theirs=None) -> bool | None:
        if mine is None:
            return None
        return mine < limit and (theirs is None or mine <= theirs)

    def show(v, kind: str) -> str:
        return fmt(v, kind)

    fast = within(ours[p99], 0.25, node.get(p99))
    fanout_ok = None if fast is None else fast and ours[lost] == 0
    return [
        f"- join storm at most Node's and under 8 s: {mark(within(ours[storm], 8, node.get(storm)))} "
        f"({show(ours[storm], 's')} s, Node {show(node.get(storm), 's')} s); issue 11's under 30 s: "
        f"{mark(within(ours[storm], 30))}",
        f"- fan-out p99 at most Node's and under 250 ms, nothing lost: {mark(fanout_ok)} "
        f"(p99 {show(ours[p99], 'ms')} ms, Node {show(node.get(p99), 'ms')} ms; "
        f"lost {show(ours[lost], 'n')})",
        f"- acknowledgements during the fan-out within 100 ms p99: senders' "
        f"{mark(within(ours[sender_ack], 0.1))} ({show(ours[sender_ack], 'ms')} ms), the probe's "
        f"{mark(within(ours[probe_ack], 0.1))} ({show(ours[probe_ack], 'ms')} ms)",
        f"- idle memory under 16 KiB per connection: {mark(within(ours[memory], 16))} "
        f"({show(ours[memory], 'KiB')} KiB, Node {show(node.get(memory), 'KiB')})",
    ]


def section(
    results: dict, servers: list[str], args, load: tuple[float, float], minutes: float, when: str
) -> list[str]:
    problems = []
    for s in servers:
        for i, r in enumerate(results[s], start=1):
            for part in ("memory", "storm", "fanout"):
                x = r.get(part)
                if isinstance(x, dict) and ("error" in x or "skipped" in x):
                    problems.append(f"- {NAMES[s]}, round {i}, {part}: {x.get('error') or x['skipped']}")
                elif part == "fanout" and isinstance(x, dict):
                    if x.get("errors"):
                        problems.append(f"- {NAMES[s]}, round {i}: error frames {x['errors']}")
                    if x.get("closed_by_server"):
                        problems.append(
                            f"- {NAMES[s]}, round {i}: the server closed {x['closed_by_server']} connections"
                        )
    return [
        "## The crowd",
        "",
        f"bench/crowd.py (`make bench` runs it after run.py), {when}, {minutes:.1f} minutes, "
        f"{args.rounds} round(s), medians over rounds; load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end (the machine's 2 cores were shared with other work: compare the "
        "columns, measured in turns, rather than the absolute figures). "
        f"{args.connections:,} SockJS-WebSocket connections to one process: {args.people:,} people "
        f"with {args.connections // args.people} tabs each, all in one room, flood control and the "
        "per-address limit off, Chatzilla with durable SQLite history, "
        + (
            "under --auth link (protocol 2: signed-in people, presence in batches). "
            if getattr(args, "protocol", 1) == 2
            else "under --auth open (protocol 1). "
        )
        + "Each server is started fresh "
        "for the idle memory (the crowd joined 500 at a time, then idle; RSS growth over their "
        "number) and again for the join storm (all at the same instant), after which 5 senders send "
        f"{args.rate:g} messages a second in all for {args.seconds:g} s to the room "
        f"({args.rate * args.connections:,.0f} deliveries a second): latency is from the sender's "
        "write to each receiver's read; the senders' acknowledgements are timed, and a probe's, one "
        "message every 100 ms in a room of its own, to see how long the server keeps anyone "
        "waiting while it fans out.",
        "",
        *table(results, servers, args.connections, args.rate),
        "",
        *targets(results, servers),
        "",
        *cpu_lines(results, servers),
        "",
        *(problems or ["Every run: every connection joined, nothing lost, no error frames."]),
        "",
    ]


# -- main -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="chatzilla,floor,node", help=",".join(SERVERS))
    parser.add_argument("--before", type=Path, help="another Chatzilla checkout: the server 'before'")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=5.0, help="messages a second to the room")
    parser.add_argument("--seconds", type=float, default=20.0, help="of sending in the fan-out")
    parser.add_argument("--workers", type=int, default=2, help="receiver processes of the generator")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--protocol",
        type=int,
        choices=(1, 2),
        default=1,
        help="Chatzilla's: 1 (--auth open, addresses) or 2 (--auth link, signed-in people)",
    )
    parser.add_argument(
        "--parts",
        default="memory,storm,fanout",
        help="memory, storm and/or fanout (the fan-out runs on the crowd a storm left: it needs storm)",
    )
    parser.add_argument(
        "--storm-timeout", type=float, default=120.0, help="seconds the join storm may take at most"
    )
    parser.add_argument("--write", help="put the section into this Markdown page")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument(
        "--from-json", help="measure nothing: show (and --write) the results a --json run wrote"
    )
    args = parser.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    if unknown := set(servers) - set(SERVERS):
        parser.error(f"unknown servers {sorted(unknown)}")
    if "before" in servers and not args.before:
        parser.error("the server 'before' needs --before DIR")
    if "node" in servers and not (ROOT / "bench" / "node" / "node_modules" / "sockjs").is_dir():
        parser.error("bench/node/node_modules is missing: run `npm ci --prefix bench/node` (make bench does)")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        meta = saved["meta"]
        for key in ("connections", "people", "rate", "seconds", "rounds"):
            setattr(args, key, meta[key])
        args.protocol = meta.get("protocol", 1)
        lines = section(
            saved["results"], meta["servers"], args, tuple(meta["load"]), meta["minutes"], meta["when"]
        )
        print("\n".join(lines))
        if args.write:
            write_section(args.write, lines)
        return 0
    parts = set(args.parts.split(","))
    if unknown := parts - {"memory", "storm", "fanout"}:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))} (memory, storm, fanout)")
    if "fanout" in parts and "storm" not in parts:
        parser.error("--parts: the fan-out runs on the crowd the storm left: fanout needs storm")
    raise_fd_limit(args.connections + 500)
    db = chatzilla_has_db()
    if args.protocol == 2 and not db:
        parser.error("--protocol 2 needs a Chatzilla with --storage sqlite (its people are put in the file)")
    flags = CHATZILLA_FLAGS + (("--auth", "link") if args.protocol == 2 else ())
    started, load0 = time.time(), load_average()
    results: dict = {s: [] for s in servers}
    with tempfile.TemporaryDirectory(prefix="chatzilla-crowd-") as tmp:
        for round_ in range(args.rounds):
            order = servers[round_ % len(servers) :] + servers[: round_ % len(servers)]
            for name in order:
                r: dict = {}
                for part in ("memory", "storm"):
                    if part not in parts:
                        continue
                    print(
                        f"== round {round_ + 1}, {part} / {NAMES[name]} (load {load_average():.1f})",
                        flush=True,
                    )
                    kind = "chatzilla" if name == "before" else name
                    checkout = args.before if name == "before" else ROOT
                    tag = f"{name}-{part}-{round_}"
                    if kind == "chatzilla" and args.protocol == 2:
                        seed_people(Path(tmp) / f"bench-{tag}.db", args.people)  # run.Server's file
                    server = Server(kind, Path(tmp), tag, db, checkout=checkout, flags=flags)
                    try:
                        if part == "memory":
                            r["memory"] = idle_memory(
                                server.url,
                                server.pid,
                                args.connections,
                                args.people,
                                args.workers,
                                protocol=args.protocol,
                            )
                        else:
                            r.update(
                                storm_and_fanout(
                                    server.url,
                                    server.pid,
                                    args.connections,
                                    args.people,
                                    rate=args.rate,
                                    seconds=args.seconds,
                                    workers=args.workers,
                                    storm_timeout=args.storm_timeout,
                                    protocol=args.protocol,
                                    fanout="fanout" in parts,
                                )
                            )
                    except Exception as exc:  # one failed part must not lose the others' figures
                        print(f"    ERROR: {type(exc).__name__}: {exc}", flush=True)
                        r.setdefault(part if part == "memory" else "storm", {"error": str(exc)})
                    finally:
                        server.stop()
                    time.sleep(1.0)
                results[name].append(r)
    minutes = (time.time() - started) / 60
    load = (load0, load_average())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    lines = section(results, servers, args, load, minutes, when)
    print("\n".join(lines))
    if args.write:
        write_section(args.write, lines)
        print(f"wrote the crowd into {args.write}")
    if args.json:
        meta = {
            "servers": servers,
            "connections": args.connections,
            "people": args.people,
            "rate": args.rate,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "protocol": args.protocol,
            "load": load,
            "minutes": minutes,
            "when": when,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
