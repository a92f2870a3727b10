"""Search: how long a ``search`` frame takes to answer in a room of
``--messages`` messages (100,000 by default), over a real server.

The room is seeded straight into the storage before the server starts
(SQLite: the messages and their FTS5 documents, as the server writes them;
Postgres: the messages, whose words Postgres indexes itself), with text
drawn from a vocabulary of 2,000 words whose frequencies fall off as in a
natural language (Zipf), 4 to 14 words a message. Then one client joins
the room and sends each query ``--runs`` times, one at a time, and times
each answer (``search`` frame after the request, on a loopback WebSocket).

    .venv/bin/python bench/search.py                          # SQLite and Postgres
    .venv/bin/python bench/search.py --backend sqlite
    .venv/bin/python bench/search.py --write docs/performance.md

Postgres: a database of its own, created from ``--admin-url`` (the tests'
$CHATZILLA_TEST_DATABASE_URL) and dropped after. Prints a table, or JSON
with ``--json``; ``--write`` puts it into the page's Search section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ack_rate import write_section
from chatzilla_process import start_chatzilla
from long_room import Client

ROOM = "search"
VOCABULARY = 2000
#: (label, query): a very common word, a middling one, a rare one, two
#: words, a prefix as it is typed, a word no message has, and the common
#: word again on its second page (``before``).
QUERIES = [
    ("common word", "w1"),
    ("middling word", "w60"),
    ("rare word", "w1900"),
    ("two words", "w2 w30"),
    ("prefix", "w19"),
    ("absent", "nowhere"),
]


def texts(count: int) -> list[str]:
    """``count`` messages of Zipf-distributed words ``w1`` ... ``w2000``."""
    rng = random.Random(16)
    weights = [1 / rank for rank in range(1, VOCABULARY + 1)]
    words = [f"w{rank}" for rank in range(1, VOCABULARY + 1)]
    return [" ".join(rng.choices(words, weights, k=rng.randint(4, 14))) for _ in range(count)]


def seed_sqlite(path: str, contents: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from chatzilla.backends.sqlite import QUERIES as SQL
    from chatzilla.backends.sqlite import ROOM_DOCS, connect, migrate

    con = connect(path)
    migrate(con)
    start = time.time() - 86400 * 30
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    con.execute(SQL["set_room_no"], (ROOM, 1))
    rows = [
        (ROOM, i, f"user{i % 97}@example.com", text, start + i, None) for i, text in enumerate(contents, 1)
    ]
    con.executemany(SQL["insert"], rows)
    con.executemany(SQL["index"], ((ROOM_DOCS + i, text) for i, text in enumerate(contents, 1)))
    con.execute(SQL["set_last_id"], (ROOM, len(contents)))
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


async def seed_postgres(url: str, contents: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from chatzilla.backends.postgres import connect, migrate

    con = await connect(url)
    try:
        await migrate(con)
        start = time.time() - 86400 * 30
        await con.copy_records_to_table(
            "messages",
            records=[
                (ROOM, i, f"user{i % 97}@example.com", text, start + i) for i, text in enumerate(contents, 1)
            ],
            columns=["room", "id", "sender", "content", "ts"],
        )
        await con.execute("INSERT INTO rooms (room, last_id) VALUES ($1, $2)", ROOM, len(contents))
        await con.execute("ANALYZE messages")
    finally:
        await con.close()


async def measure(url: str, runs: int) -> dict[str, dict]:
    client = await Client.open(url)
    await client.send({"type": "join", "email": "searcher@example.com", "room": ROOM})
    while (await client.next())["type"] != "joined":
        pass
    results: dict[str, dict] = {}
    plan = [(label, {"q": q}) for label, q in QUERIES]
    plan.append(("common word, page 2", {"q": "w1"}))
    for label, frame in plan:
        seconds, found = [], 0
        for n in range(runs):
            if label.endswith("page 2"):
                frame = {**frame, "before": results["common word"]["last_id"]}
            started = time.perf_counter()
            await client.send({"type": "search", **frame, "ref": f"s{n}"})
            answer = await client.next()
            seconds.append(time.perf_counter() - started)
            assert answer["type"] == "search", answer
            found = len(answer["messages"])
            last_id = answer["messages"][-1]["id"] if answer["messages"] else None
        seconds.sort()
        results[label] = {
            "query": frame,
            "results": found,
            "last_id": last_id,
            "p50_ms": 1000 * statistics.median(seconds),
            "p99_ms": 1000 * seconds[min(len(seconds) - 1, round(0.99 * len(seconds)))],
            "max_ms": 1000 * seconds[-1],
        }
    client.ws.close()
    return results


def run(backend: str, contents: list[str], runs: int, admin_url: str) -> dict:
    """Seed a room, start a server on it, time the searches."""
    with tempfile.TemporaryDirectory() as tmp:
        database = None
        started = time.perf_counter()
        if backend == "sqlite":
            db = f"{tmp}/search.db"
            seed_sqlite(db, contents)
            flags = ["--storage", "sqlite", "--db", db]
        else:
            database = f"chatzilla_bench_{uuid.uuid4().hex[:8]}"
            admin(admin_url, f"CREATE DATABASE {database}")
            url = admin_url.rsplit("/", 1)[0] + "/" + database
            asyncio.run(seed_postgres(url, contents))
            flags = ["--database-url", url]
        seeded = time.perf_counter() - started
        proc, server = start_chatzilla("--log-level", "WARNING", "--rate-limit", "0", *flags)
        try:
            return {"seed_s": seeded, "results": asyncio.run(measure(server, runs))}
        finally:
            proc.terminate()
            proc.wait(10)
            if database is not None:
                admin(admin_url, f"DROP DATABASE {database} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("CHATZILLA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a Postgres database to create the benchmark's own from",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", help="put the table into this Markdown file's Search section")
    args = parser.parse_args()
    contents = texts(args.messages)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    start_load = os.getloadavg()[0]
    report = {b: run(b, contents, args.runs, args.admin_url) for b in backends}
    load = f"load average {start_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    if args.json:
        print(json.dumps({"messages": args.messages, "runs": args.runs, "load": load, **report}))
        return
    labels = list(next(iter(report.values()))["results"])
    lines = [
        "| query | " + " | ".join(f"{b} found | p50 ms | p99 ms" for b in backends) + " |",
        "|---|" + "---:|---:|---:|" * len(backends),
    ]
    for label in labels:
        cells = []
        for b in backends:
            r = report[b]["results"][label]
            cells.append(f"{r['results']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f}")
        lines.append(
            f"| {label} (`{report[backends[0]]['results'][label]['query']['q']}`) | "
            + " | ".join(cells)
            + " |"
        )
    worst = max(r["p99_ms"] for b in backends for r in report[b]["results"].values())
    print("\n".join([*lines, load, f"slowest p99: {worst:.1f} ms"]))
    if args.write:
        write_section(
            args.write,
            [
                "## Search",
                "",
                f"bench/search.py (`make bench` runs it last): a room of {args.messages:,} messages "
                "of 4 to 14 words from a vocabulary of 2,000 with Zipf frequencies (`w1` the most "
                "common), seeded straight into the storage; one client sends each query "
                f"{args.runs} times, one at a time, and times the `search` answer (20 results, newest "
                f"first) on a loopback WebSocket; on {platform.node()} ({os.cpu_count()} cores), "
                f"{time.strftime('%Y-%m-%d')}, {load}. The last word of a query is a prefix (`w19` "
                "finds `w19`, `w190`...); page 2 is the same query with `before` the last result.",
                "",
                *lines,
                "",
                f"- Target, a search in a room of 100,000 messages answers in under 100 ms: "
                f"{'**met**' if worst < 100 else '**not met**'} (slowest p99 {worst:.1f} ms).",
                "",
            ],
        )


def admin(url: str, statement: str) -> None:
    """Run one statement on the Postgres at ``url`` (psql: CREATE/DROP DATABASE)."""
    subprocess.run(["psql", url, "-qc", statement], check=True, capture_output=True)


if __name__ == "__main__":
    main()
