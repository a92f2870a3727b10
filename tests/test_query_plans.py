"""Every SQLite query the backend runs costs the same however long the room's
history: ``EXPLAIN QUERY PLAN`` on a seeded file shows each one searching an
index with bounds past the room (a key range, a ref), never scanning the
table or walking a whole room.

The planner's choice depends on its statistics, so each plan is checked on
a file that has none (a fresh deployment, which never runs ANALYZE) and on
the same file after ANALYZE.
"""

from __future__ import annotations

import re

import pytest

from chatzilla.backends.sqlite import QUERIES, ROOM_DOCS, connect, migrate

ROOMS = ("lobby", "dev", "quiet")

#: Arguments for each query in chatzilla.backends.sqlite.QUERIES: a query
#: added there without an entry here fails test_every_query_is_checked.
ARGUMENTS: dict[str, tuple] = {
    "by_ref": ("lobby", "user3@example.com", "r-1234", 0.0),
    "insert": ("lobby", 10**6, "a@example.com", "hi", 1.0, "r-x", 0),
    "page": ("lobby", 100, 2**63 - 1, 51),
    "last_id": ("lobby",),
    "set_last_id": ("lobby", 10**6),
    "bounds": ("lobby",),
    "ts_from": ("lobby", 3000),
    "remove": ("lobby", 1, 5001),
    "set_first_id": (5001, "lobby"),
    "rooms": (),
    "active": (10,),
    "set_last_ts": (1.5, "lobby"),
    "get": ("lobby", 3000),
    "get_many": ("lobby", "[3000, 12, 5999]"),
    "change": ("edited", 7, 1.5, 0, None, "lobby", 3000),
    "changes": ("lobby", 3, 1001),
    "last_rev": ("lobby",),
    "set_last_rev": (7, "lobby"),
    "room_no": ("lobby",),
    "next_room_no": (),
    "set_room_no": ("lobby", 1),
    "index": (ROOM_DOCS + 10**6, "hello"),
    "unindex": (ROOM_DOCS + 3000,),
    "unindex_range": (ROOM_DOCS + 1, ROOM_DOCS + 5001),
    "search": ('"x"*', ROOM_DOCS, 2 * ROOM_DOCS, 21),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A file with 3 rooms of 6000 messages, half with a ref, 7 senders,
    a third of them replies (to the message 3 before)."""
    con = connect(str(tmp_path_factory.mktemp("plans") / "plans.db"))
    migrate(con)
    con.execute("BEGIN")
    con.executemany(
        QUERIES["insert"],
        (
            (
                room,
                i,
                f"user{i % 7}@example.com",
                "x" * (i % 300),
                1000.0 + i,
                f"r-{i}" if i % 2 else None,
                i - 3 if i % 3 == 0 else 0,
            )
            for room in ROOMS
            for i in range(1, 6001)
        ),
    )
    con.executemany(QUERIES["set_last_id"], ((room, 6000) for room in ROOMS))
    for no, room in enumerate(ROOMS, 1):
        con.execute(QUERIES["set_room_no"], (room, no))
        con.executemany(QUERIES["index"], ((no * ROOM_DOCS + i, f"word{i % 50} x") for i in range(1, 6001)))
    # Every tenth message changed since, one change id each.
    con.executemany(
        QUERIES["change"],
        (("edited", i // 10, 2000.0, 0, None, room, i) for room in ROOMS for i in range(10, 6001, 10)),
    )
    con.execute("COMMIT")
    yield con
    con.close()


def plan(con, sql: str, args: tuple) -> list[str]:
    return [row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args)]


# A search of the messages' primary key bounded by the room alone walks the
# whole room: that is the scan this test exists to catch.
# (The rooms table has one row per room: its room=? finds that row.)
_ROOM_ONLY = re.compile(r"^SEARCH messages .*\(room=\?\)$")


# The search index, FTS5: its plan names what it was given (idxStr): M for
# a MATCH, = for one document id, > and < for a range of them (one room's).
_FTS = re.compile(r"^SCAN messages_fts VIRTUAL TABLE INDEX \d+:(M\d+)?(=|><)$")


def assert_bounded(name: str, steps: list[str]) -> None:
    for step in steps:
        if "messages_fts" in step:
            assert _FTS.match(step), f"{name}: {step}"
            continue
        if "messages" not in step:
            continue  # the rooms table (a row per room), a b-tree over the few rows found
        assert step.startswith("SEARCH"), f"{name}: {step}"
        assert "USING" in step, f"{name}: {step}"
        assert not _ROOM_ONLY.search(step), f"{name} walks a whole room: {step}"


def test_every_query_is_checked():
    assert set(QUERIES) == set(ARGUMENTS)


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_plan_searches_an_index(seeded, name, analyzed):
    if analyzed:
        seeded.execute("ANALYZE")
    else:
        seeded.execute("DROP TABLE IF EXISTS sqlite_stat1")
        seeded.execute("ANALYZE sqlite_schema")  # reload: the planner forgets the statistics
    if QUERIES[name].lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE")):
        assert_bounded(name, plan(seeded, QUERIES[name], ARGUMENTS[name]))
    else:
        # An insert has no plan to speak of; it must at least be valid SQL.
        seeded.execute("EXPLAIN " + QUERIES[name], ARGUMENTS[name]).fetchall()


def test_the_old_ref_lookup_would_walk_the_room(seeded):
    """The check above catches the query that made every message cost O(n):
    the ref lookup as it was, which the planner served by walking the room."""
    seeded.execute("DROP TABLE IF EXISTS sqlite_stat1")
    seeded.execute("ANALYZE sqlite_schema")
    old = (
        "SELECT id, content, ts FROM messages WHERE room = ? AND sender = ? "
        "AND ref = ? AND ts >= ? ORDER BY id DESC LIMIT 1"
    )
    with pytest.raises(AssertionError, match="walks a whole room"):
        assert_bounded("old by_ref", plan(seeded, old, ARGUMENTS["by_ref"]))
