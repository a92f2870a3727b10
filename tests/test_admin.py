"""``python -m chatzilla admin``: a backup that survives a change of backend
(SQLite -> Postgres -> SQLite, every row the same), an export of one room,
a deletion request on both SQL storages, and the command line itself as an
operator runs it (a real subprocess on a real SQLite file)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_client

from chatzilla import admin_redis
from chatzilla.accounts import Link, PostgresAccounts, RedisAccounts, SQLiteAccounts
from chatzilla.admin import (
    FORGOTTEN,
    PostgresDatabase,
    SQLiteDatabase,
    export,
    export_redis,
    forget,
    import_,
    import_redis,
)
from chatzilla.admin import main as admin_main
from chatzilla.admin_redis import RedisDeployment
from chatzilla.admin_redis import forget as forget_redis
from chatzilla.backends.postgres import PostgresBackend
from chatzilla.backends.redis import RedisBackend
from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.chat import DELETE, EDIT, REACT, Change, Quote
from chatzilla.identity import Person
from chatzilla.moderation import Action, Rules
from chatzilla.moderation_store import PostgresModeration, RedisModeration, SQLiteModeration
from chatzilla.signin import digest

from .test_redis import prefix, redis_url  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CHATZILLA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: What forgetting Bob (of _fill) removes on any storage, and again then.
FORGOT_BOB = (
    {
        "messages": 10, "reactions": 2, "links": 1, "sessions": 1, "bot_tokens": 0, "room_roles": 1,
        "sanctions": 1, "invitations": 1, "invitation links": 1, "audit entries redacted": 5, "people": 1,
    },
    {"messages": 0, "reactions": 0, "links": 0},
)  # fmt: skip
ALICE = Person("p0000000000a1", "alice@example.com", "Alice")
BOB = Person("p0000000000b2", "bob@example.com", "Bob")


async def _fill(backend, accounts, store, started: bool = False) -> None:
    """A little of everything the chat keeps, through the chat's own stores
    (``started``: the backend was started already)."""
    for person in (ALICE, BOB):
        await accounts.add_person(person)
    await accounts.add_token(digest("czb_alice"), ALICE.id, "weather", 1000.0)
    await accounts.add_session(digest("session-bob"), BOB.id, time.time() + 3600)
    await accounts.add_link(digest("link-bob"), Link(BOB.email, "dev", time.time() + 600))
    if not started:
        backend.start(lambda *_: None, lambda *_: None)
    for n in range(5):
        for room, person in (("dev", ALICE), ("dev", BOB), ("lobby", BOB)):
            await backend.append(room, person.key(), f"{room} {n} from {person.name} ✓", f"r{n}", None)
    await backend.append("lobby", "open@example.com", "from an --auth open time", None, None)
    await backend.change("dev", 1, Change(EDIT, content="edited ✓"))
    await backend.change("dev", 3, Change(DELETE))
    await backend.change("dev", 5, Change(REACT, emoji="👍", who=BOB.key()))
    await backend.change("dev", 5, Change(REACT, emoji="👍", who=ALICE.key()))
    await backend.change("dev", 7, Change(REACT, emoji="🎉", who=BOB.key()))
    await store.claim(Action("claim", "dev", ALICE.id, ALICE.id, 1000.0, role="owner"))
    await store.apply(Action("grant", "dev", BOB.id, ALICE.id, 1001.0, role="moderator"))
    await store.apply(Action("mute", "lobby", BOB.id, "", 1002.0, until=5000.0, reason="calm down"))
    await store.apply(Action("ban", "dev", "p0000000000c3", BOB.id, 1003.0, reason="spam"))
    await store.apply(
        Action("rules", "dev", "", ALICE.id, 1004.0, rules=Rules("team ✓", True, False).frame())
    )
    await store.apply(Action("invite", "dev", BOB.id, ALICE.id, 1005.0))
    # Invitation links (far from expired): Bob's goes with him.
    await store.apply(Action("link", "dev", "", BOB.id, 1006.0, until=1e10, link="bobs-link"))
    await store.apply(Action("link", "dev", "", ALICE.id, 1007.0, until=1e10, link="alices-link"))


async def _sqlite_filled(path: str) -> None:
    backend, accounts, store = SQLiteBackend(path), SQLiteAccounts(path), SQLiteModeration(path)
    try:
        await _fill(backend, accounts, store)
    finally:
        await backend.close()
        await accounts.close()
        await store.close()


async def _sqlite_export(path: str) -> tuple[list[dict], io.StringIO]:
    """A SQLite chat filled by :func:`_fill`, exported: its rows, and the
    export as a file to import."""
    await _sqlite_filled(path)
    rows = await _export(await SQLiteDatabase(path).open())
    return rows, io.StringIO("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


async def _export(db, room=None) -> list[dict]:
    out = io.StringIO()
    try:
        await export(db, out, room, batch=4)  # small pages: paging is part of it
    finally:
        await db.close()
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def _import(db, lines: list[dict]) -> int:
    try:
        return await import_(db, io.StringIO("".join(json.dumps(r) + "\n" for r in lines)))
    finally:
        await db.close()


def test_a_backup_goes_from_sqlite_to_postgres_and_back_unchanged(tmp_path, database_url):
    first, last = str(tmp_path / "first.db"), str(tmp_path / "last.db")

    async def scenario():
        await _sqlite_filled(first)
        from_sqlite = await _export(await SQLiteDatabase(first).open())
        await _import(await PostgresDatabase(database_url).open(), from_sqlite)
        from_postgres = await _export(await PostgresDatabase(database_url).open())
        await _import(await SQLiteDatabase(last).open(), from_postgres)
        again = await _export(await SQLiteDatabase(last).open())
        # The chat reads the copies as it read the original.
        pg = PostgresBackend(database_url)
        await pg.open()
        try:
            pg_page = await pg.page("dev", None, None, 50)
            pg_found = [m.id for m in await pg.search("dev", ["alice"], None, 50)]
        finally:
            await pg.close()
        sqlite = SQLiteBackend(last)
        accounts = SQLiteAccounts(last)
        store = SQLiteModeration(last)
        try:
            page = await sqlite.page("dev", None, None, 50)
            found = [m.id for m in await sqlite.search("dev", ["alice"], None, 50)]
            assert found == pg_found == [9, 7, 5]  # the imports are searched too
            bounds = await sqlite.bounds("dev")
            bot = await accounts.token_person(digest("czb_alice"))
            roles = await store.roles("dev")
            links = [(a.link, a.actor) for a in await store.links("dev")]
            rules = await store.rules("dev"), await store.invited("dev", BOB.id), links
            mutes = await store.sanctions("lobby", BOB.id)
            audit = await store.audit(None, 10)
            # A new message after the copy gets the next id, never a used one.
            sqlite.start(lambda *_: None, lambda *_: None)
            new, _ = await sqlite.append("dev", ALICE.key(), "after the copy", None, None)
        finally:
            await sqlite.close()
            await accounts.close()
            await store.close()
        return from_sqlite, from_postgres, again, pg_page, page, bounds, bot, roles, rules, mutes, audit, new

    from_sqlite, from_postgres, again, pg_page, page, bounds, bot, roles, rules, mutes, audit, new = (
        asyncio.run(scenario())
    )
    assert from_sqlite[0] == {"kind": "chatzilla-export", "version": 1, "room": None}
    kinds = [r["kind"] for r in from_sqlite[1:]]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "room": 2, "message": 16, "person": 2, "token": 1, "session": 1, "role": 2, "sanction": 2, "audit": 8,
        "rules": 1, "invitation": 1, "link": 2,
    }  # fmt: skip
    assert from_postgres == from_sqlite and again == from_sqlite
    assert [(m.id, m.content) for m in page] == [(m.id, m.content) for m in pg_page]
    assert page[0].content == "edited ✓" and page[0].edited is not None and page[2].deleted
    assert bounds == (1, 10) and new.id == 11
    assert bot == ALICE and roles == {ALICE.id: "owner", BOB.id: "moderator"}
    assert rules[:2] == (Rules("team ✓", True, False), True)
    assert mutes[0].reason == "calm down"
    assert [a.kind for a in audit] == ["claim", "grant", "mute", "ban", "rules", "invite", "link", "link"]
    assert rules[2] == [("bobs-link", BOB.id), ("alices-link", ALICE.id)]


def test_an_export_of_one_room_holds_that_room_alone(tmp_path, database_url):
    path = str(tmp_path / "chatzilla.db")

    async def scenario():
        await _sqlite_filled(path)
        lines = await _export(await SQLiteDatabase(path).open(), "lobby")
        await _import(await PostgresDatabase(database_url).open(), lines)
        pg = PostgresBackend(database_url)
        await pg.open()
        try:
            return lines, await pg.page("lobby", None, None, 50), await pg.page("dev", None, None, 50)
        finally:
            await pg.close()

    lines, lobby, dev = asyncio.run(scenario())
    assert {r["kind"] for r in lines[1:]} == {"room", "message", "sanction", "audit"}
    assert all(r["room"] == "lobby" for r in lines[1:])
    assert len(lobby) == 6 and dev == []


def test_an_import_refuses_what_is_no_export(tmp_path):
    from chatzilla.admin import AdminError

    async def scenario():
        db = await SQLiteDatabase(str(tmp_path / "x.db")).open()
        try:
            await import_(db, io.StringIO('{"kind": "something else"}\n'))
        finally:
            await db.close()

    with pytest.raises(AdminError, match="not a Chatzilla export"):
        asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_forgetting_an_address_leaves_markers_and_nothing_of_them(kind, tmp_path, request):
    path = str(tmp_path / "chatzilla.db")

    async def scenario():
        if kind == "sqlite":
            await _sqlite_filled(path)
            opened = lambda: SQLiteDatabase(path).open()  # noqa: E731
            parts = lambda: (SQLiteBackend(path), SQLiteAccounts(path), SQLiteModeration(path))  # noqa: E731
        else:
            url = request.getfixturevalue("database_url")
            backend = PostgresBackend(url)
            await backend.open()
            accounts, store = PostgresAccounts(url), PostgresModeration(url)
            try:
                await _fill(backend, accounts, store)
            finally:
                await backend.close()
                await accounts.close()
                await store.close()
            opened = lambda: PostgresDatabase(url).open()  # noqa: E731

            async def _pg():
                b = PostgresBackend(url)
                await b.open()
                return b

            parts = None
        db = await opened()
        try:
            removed = await forget(db, BOB.email)
            again = await forget(db, BOB.email)
        finally:
            await db.close()
        if parts is not None:
            backend, accounts, store = parts()
        else:
            backend, accounts, store = await _pg(), PostgresAccounts(url), PostgresModeration(url)
        try:
            dev = await backend.page("dev", None, None, 50)
            assert await backend.search("dev", ["bob"], None, 50) == []  # out of search too
            assert [m.id for m in await backend.search("dev", ["alice"], None, 50)] == [9, 7, 5]
            lobby = await backend.page("lobby", None, None, 50)
            changes, rev = await backend.changes("dev", 0, 100)
            seen = await _seen(accounts)
            # Nor are they found by a search (SQLite's index keeps text apart).
            assert await backend.search("dev", ["bob"], None, 50) == []
            assert len(await backend.search("dev", ["alice"], None, 50)) > 0
            roles = await store.roles("dev")
            sanctions = await store.sanctions("lobby", BOB.id) + [await store.invited("dev", BOB.id)]
            sanctions.append([a.link for a in await store.links("dev")])
            audit = await store.audit(None, 10)
        finally:
            await backend.close()
            await accounts.close()
            await store.close()
        return removed, again, dev, lobby, changes, rev, seen, roles, sanctions, audit

    removed, again, dev, lobby, changes, rev, seen, roles, sanctions, audit = asyncio.run(scenario())
    assert (removed, again) == FORGOT_BOB
    bobs = [m for m in dev + lobby if m.sender == FORGOTTEN]
    assert len(bobs) == 10 and all(m.deleted and m.content == "" for m in bobs)
    assert not any("Bob" in m.content or BOB.id in m.sender for m in dev + lobby)
    assert [m.content for m in dev if m.sender == ALICE.key()][:3] == ["edited ✓", "", "dev 2 from Alice ✓"]
    assert any(m.content == "from an --auth open time" for m in lobby)
    # A page catching up by change sees each of them go.
    assert {m.id for m in changes if m.sender == FORGOTTEN} == {m.id for m in dev if m.sender == FORGOTTEN}
    # Five changes before (an edit, a delete, three reactions), Bob's five
    # messages in dev, then his reactions off two messages.
    assert rev == 5 + 5 + 2
    reactions = {m.id: m.reactions for m in dev if m.id in (5, 7)}
    assert reactions == {5: (("👍", (ALICE.key(),)),), 7: ()}
    assert seen[:3] == (None, None, None) and seen[3] == ALICE and seen[4] == ALICE
    assert roles == {ALICE.id: "owner"} and sanctions == [False, ["alices-link"]]
    text = json.dumps([a.to_json() for a in audit])
    assert (
        BOB.id not in text
        and "Bob" not in text
        and [a.kind for a in audit] == ["claim", "grant", "mute", "ban", "rules", "invite", "link", "link"]
    )


def admin(*args: str, db: str, process: bool = False) -> subprocess.CompletedProcess:
    """``python -m chatzilla admin ARGS`` on the SQLite file ``db``: with
    ``process`` a real subprocess; else its ``main()`` in this process, as
    ``python -m chatzilla`` calls it (a Python start and the chat's imports
    cost some 0.5 s of CPU a command)."""
    env = {**os.environ, "CHATZILLA_DB": db}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if process:
        return subprocess.run(
            [sys.executable, "-m", "chatzilla", "admin", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = admin_main(args, env)
        except SystemExit as exc:  # argparse's
            code = exc.code
    return subprocess.CompletedProcess(["chatzilla", "admin", *args], code, out.getvalue(), err.getvalue())


def test_the_command_line_as_an_operator_runs_it(tmp_path):
    db = str(tmp_path / "chatzilla.db")
    asyncio.run(_sqlite_filled(db))
    # The first and the last as the operator runs them; those between in
    # this process (and "people" of the copy must read as the first did).
    people = admin("people", db=db, process=True)
    assert people.returncode == 0 and people.stdout.splitlines() == [
        f"{ALICE.id}\tAlice\talice@example.com",
        f"{BOB.id}\tBob\tbob@example.com",
    ]
    rooms = admin("rooms", db=db)
    assert rooms.stdout.splitlines() == [
        "dev\tmessages 1-10\troles 2\tsanctions 1",
        "lobby\tmessages 1-6\troles 0\tsanctions 1",
    ]
    banned = admin("ban", "dev", "bob@Example.COM", "--minutes", "60", "--reason", "flooding", db=db)
    assert banned.returncode == 0 and banned.stdout == f"ban: Bob ({BOB.id}) in dev\n"
    assert admin("revoke", "dev", BOB.id, db=db).returncode == 0
    audit = admin("audit", "dev", db=db).stdout.splitlines()
    assert audit[-2].split("\t")[1:5] == ["dev", "operator ()", "ban", f"Bob ({BOB.id})"]
    assert audit[-2].endswith("reason: flooding") and "\trevoke\t" in audit[-1]

    async def bans():
        store = SQLiteModeration(db)
        try:
            return await store.sanctions("dev", BOB.id), await store.roles("dev")
        finally:
            await store.close()

    sanctions, roles = asyncio.run(bans())
    assert [(s.kind, s.reason, s.actor) for s in sanctions] == [("ban", "flooding", "")]
    assert sanctions[0].until == pytest.approx(time.time() + 3600, abs=60)
    assert roles == {ALICE.id: "owner"}
    ruled = admin("rules", "dev", "--read-only", "yes", "--topic", "news", db=db)
    assert ruled.stdout == 'rules of dev: {"topic": "news", "private": true, "read_only": true}\n'
    assert admin("invite", "dev", "alice@example.com", db=db).stdout == f"invite: Alice ({ALICE.id}) in dev\n"
    # A backup and a restore into a new file, by file.
    backup, copy = str(tmp_path / "backup.jsonl"), str(tmp_path / "copy.db")
    exported = admin("export", "--output", backup, db=db)
    assert exported.returncode == 0 and exported.stderr.startswith("exported ")
    imported = admin("import", backup, db=copy)
    assert imported.returncode == 0 and imported.stdout.startswith("imported ")
    assert admin("people", db=copy).stdout == people.stdout
    forgot = admin("forget", "bob@example.com", db=db)
    assert forgot.returncode == 0 and forgot.stdout.startswith("forgot bob@example.com: 10 messages")
    # What an operator gets wrong is said in one line.
    nobody = admin("ban", "dev", "carol@example.com", db=db)
    assert (
        nobody.returncode == 1
        and nobody.stderr == "chatzilla admin: nobody with 'carol@example.com' ever signed in\n"
    )
    lobby = admin("grant", "lobby", ALICE.email, "owner", db=db)
    assert lobby.returncode == 1 and "the lobby has no owner" in lobby.stderr
    memory = admin("--storage", "memory", "people", db=db, process=True)
    assert memory.returncode == 2 and "memory storage" in memory.stderr


async def _seen(accounts) -> tuple:
    """What the accounts know after Bob is forgotten: Bob, his session, his
    sign-in link, Alice and her bot token's person."""
    return (
        await accounts.person_by_email(BOB.email),
        await accounts.session_person(digest("session-bob"), time.time()),
        await accounts.peek_link(digest("link-bob"), time.time()),
        await accounts.person_by_email(ALICE.email),
        await accounts.token_person(digest("czb_alice")),
    )


async def _redis_filled(key_prefix: str, more):
    """A chat kept in Redis under ``key_prefix``, filled as :func:`_fill` does,
    then ``await more(backend, store)``, whose answer this returns."""
    backend = RedisBackend(REDIS_URL, key_prefix)
    accounts, store = RedisAccounts(REDIS_URL, key_prefix), RedisModeration(REDIS_URL, key_prefix)
    try:
        # Someone in each room: its reader follows it, so each append
        # returns once delivered (not after the longest wait).
        backend.start(lambda *_: None, lambda *_: None)
        for room in ("dev", "lobby"):
            await backend.enter(room, "watcher@example.com", object())
        await _fill(backend, accounts, store, started=True)
        return await more(backend, store)
    finally:
        await backend.close()
        await accounts.close()
        await store.close()


def test_a_chat_kept_in_redis_is_listed_and_exported_into_sqlite(tmp_path, prefix):  # noqa: F811
    """Redis alone keeps the messages too: rooms, people and export read it,
    and the export imports into SQLite line for line (a way off Redis)."""
    path = str(tmp_path / "from-redis.db")

    async def scenario():
        async def more(backend, store):
            await store.report(Action("report", "dev", BOB.id, ALICE.id, 1008.0, message=2))

        await _redis_filled(prefix, more)
        redis = RedisDeployment(REDIS_URL, prefix)
        try:
            rooms, people = await redis.rooms(), await redis.people()
            out = io.StringIO()
            await export_redis(redis, out)
            lobby = io.StringIO()
            await export_redis(redis, lobby, "lobby")
        finally:
            await redis.close()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        await _import(await SQLiteDatabase(path).open(), lines)
        copied = await _export(await SQLiteDatabase(path).open())
        sqlite = SQLiteBackend(path)
        try:
            page = await sqlite.page("dev", None, None, 50)
        finally:
            await sqlite.close()
        return (
            rooms,
            people,
            lines,
            copied,
            page,
            [json.loads(line) for line in lobby.getvalue().splitlines()],
        )

    rooms, people, lines, copied, page, lobby = asyncio.run(scenario())
    assert rooms == [("dev", 1, 10, 2, 1), ("lobby", 1, 6, 0, 1)]
    assert people == [(ALICE.id, "Alice", ALICE.email), (BOB.id, "Bob", BOB.email)]
    kinds = [r["kind"] for r in lines[1:]]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "room": 2, "message": 16, "person": 2, "token": 1, "session": 1, "role": 2, "sanction": 2, "audit": 9,
        "rules": 1, "invitation": 1, "link": 2, "report": 1,
    }  # fmt: skip

    # Line for line what SQLite then exports (its audit numbered alike).
    def rows(export):
        return sorted(json.dumps(r, sort_keys=True) for r in export[1:])

    assert rows(copied) == rows(lines)
    assert page[0].content == "edited ✓" and page[0].edited is not None and page[2].deleted
    assert page[4].reactions == (("👍", (BOB.key(), ALICE.key())),)
    assert {r["kind"] for r in lobby[1:]} == {"room", "message", "sanction", "audit"}
    assert all(r["room"] == "lobby" for r in lobby[1:])


def test_a_backup_goes_from_sqlite_into_redis_and_the_chat_reads_it(tmp_path, prefix):  # noqa: F811
    path = str(tmp_path / "first.db")

    async def scenario():
        from_sqlite, lines = await _sqlite_export(path)
        redis = RedisDeployment(REDIS_URL, prefix)
        try:
            imported = await import_redis(redis, lines)
            lines.seek(0)
            again = await import_redis(redis, lines)  # nothing new the second time
            out = io.StringIO()
            await export_redis(redis, out)
        finally:
            await redis.close()
        backend = RedisBackend(REDIS_URL, prefix)
        store = RedisModeration(REDIS_URL, prefix)
        accounts = RedisAccounts(REDIS_URL, prefix)
        try:
            page = await backend.page("dev", None, None, 50)
            changes, rev = await backend.changes("dev", 0, 100)
            assert sorted(room for room, _ in await backend.active(10)) == ["dev", "lobby"]
            roles, rules = await store.roles("dev"), await store.rules("dev")
            bot = await accounts.token_person(digest("czb_alice"))
        finally:
            await backend.close()
            await store.close()
            await accounts.close()
        sqlite = SQLiteBackend(path)
        try:
            original = await sqlite.page("dev", None, None, 50)
        finally:
            await sqlite.close()
        copied = [json.loads(line) for line in out.getvalue().splitlines()]
        return from_sqlite, imported, again, copied, page, original, changes, rev, roles, rules, bot

    from_sqlite, imported, again, copied, page, original, changes, rev, roles, rules, bot = asyncio.run(
        scenario()
    )
    assert imported == (len(from_sqlite) - 1, 0) and again == imported

    def rows(export):
        # Redis keeps a bot token's person alone (no label, no time).
        return sorted(
            json.dumps({**r, "label": "", "created": 0.0} if r["kind"] == "token" else r, sort_keys=True)
            for r in export[1:]
        )

    assert rows(copied) == rows(from_sqlite)
    assert page == original  # edits, deletes and reactions as they were
    assert rev == 5 and {m.id for m in changes} == {1, 3, 5, 7}
    assert roles == {ALICE.id: "owner", BOB.id: "moderator"} and rules == Rules("team ✓", True, False)
    assert bot == ALICE


def test_an_import_into_redis_keeps_the_newest_audit_entries_as_the_chat_does(tmp_path, prefix, monkeypatch):  # noqa: F811
    """Redis keeps the newest REDIS_AUDIT_KEPT audit entries; an import of a
    longer log (from SQL, which keeps them all) keeps the same newest ones."""
    monkeypatch.setattr(admin_redis, "REDIS_AUDIT_KEPT", 3)
    path = str(tmp_path / "first.db")

    async def scenario():
        from_sqlite, lines = await _sqlite_export(path)
        redis = RedisDeployment(REDIS_URL, prefix)
        try:
            await import_redis(redis, lines)
            kept = await redis._call("lrange", redis._key("audit"), 0, -1)
            lines.seek(0)
            await import_redis(redis, lines)  # the same again: the trimmed stay out
            again = await redis._call("lrange", redis._key("audit"), 0, -1)
        finally:
            await redis.close()
        return [r["action"] for r in from_sqlite if r.get("kind") == "audit"], kept, again

    audit, kept, again = asyncio.run(scenario())
    assert len(audit) > 3 and kept == audit[-3:] and again == kept


def test_forgetting_an_address_on_redis_leaves_markers_and_nothing_of_them(prefix):  # noqa: F811
    async def scenario():
        async def more(backend, store):
            # Alice answers Bob: her reply carries a quote of his text.
            quote = Quote(BOB.key(), "dev 4 from Bob ✓")
            reply, _ = await backend.append(
                "dev", ALICE.key(), "yes, Bob", "q1", None, reply_to=10, quote=quote
            )
            # Bob's report of Alice's message, still open when he is forgotten.
            await store.report(Action("report", "dev", ALICE.id, BOB.id, 1008.0, message=2))
            return reply

        reply = await _redis_filled(prefix, more)
        redis = RedisDeployment(REDIS_URL, prefix)
        try:
            removed = await forget_redis(redis, BOB.email)
            again = await forget_redis(redis, BOB.email)
        finally:
            await redis.close()
        backend = RedisBackend(REDIS_URL, prefix)
        accounts, store = RedisAccounts(REDIS_URL, prefix), RedisModeration(REDIS_URL, prefix)
        raw = redis_client.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            dev = await backend.page("dev", None, None, 50)
            lobby = await backend.page("lobby", None, None, 50)
            changes, rev = await backend.changes("dev", 0, 100)
            seen = await _seen(accounts)
            roles = await store.roles("dev")
            kept = (await store.sanctions("lobby", BOB.id), await store.invited("dev", BOB.id))
            links = [a.link for a in await store.links("dev")]
            audit = await store.audit(None, 20)
            # Someone resolves the report he made: it was open, it closes,
            # and nobody's count of open reports goes below nothing.
            (report,) = await store.reports("dev", 10)
            await store.apply(Action("resolve", "dev", "", ALICE.id, 1009.0, report=report.report))
            open_after = await store.reports("dev", 10)
            counts = raw.hgetall(f"{prefix}:reports-by:dev")
            # Nothing of Bob's left in any key of the chat, streams included.
            everything = []
            for key in raw.scan_iter(match=f"{prefix}:*"):
                kind = raw.type(key)
                if kind == "stream":
                    everything += [json.dumps(e) for e in raw.xrange(key)]
                elif kind == "hash":
                    everything += [json.dumps(raw.hgetall(key))]
                elif kind == "list":
                    everything += raw.lrange(key, 0, -1)
                elif kind == "string":
                    everything += [raw.get(key)]
        finally:
            await backend.close()
            await accounts.close()
            await store.close()
            raw.close()
        return (
            removed, again, dev, lobby, changes, rev, seen, roles, kept, links, audit, everything, reply,
            report, open_after, counts,
        )  # fmt: skip

    (
        removed, again, dev, lobby, changes, rev, seen, roles, kept, links, audit, everything, reply,
        report, open_after, counts,
    ) = asyncio.run(scenario())  # fmt: skip
    # His report and its audit entry no longer name him.
    bobs_report = {"audit entries redacted": FORGOT_BOB[0]["audit entries redacted"] + 2}
    assert (removed, again) == ({**FORGOT_BOB[0], **bobs_report}, FORGOT_BOB[1])
    assert report.actor == "" and report.message == 2 and open_after == []
    assert all(int(n) >= 0 for n in counts.values()) and "" not in counts, counts
    bobs = [m for m in dev + lobby if m.sender == FORGOTTEN]
    assert len(bobs) == 10 and all(m.deleted and m.content == "" and not m.reactions for m in bobs)
    assert [m.content for m in dev if m.sender == ALICE.key()][:3] == ["edited ✓", "", "dev 2 from Alice ✓"]
    assert dev[-1].id == reply.id and dev[-1].reply_to == 10 and dev[-1].content == "yes, Bob"
    assert any(m.content == "from an --auth open time" for m in lobby)
    assert {m.id for m in changes if m.sender == FORGOTTEN} == {m.id for m in dev if m.sender == FORGOTTEN}
    assert rev == 5 + 2 + 5  # five changes before, his reactions off two messages, his five messages
    assert {m.id: m.reactions for m in dev if m.id in (5, 7)} == {5: (("👍", (ALICE.key(),)),), 7: ()}
    assert seen == (None, None, None, ALICE, ALICE)
    assert roles == {ALICE.id: "owner"} and kept == ([], False) and links == ["alices-link"]
    assert [a.kind for a in audit] == [
        "claim", "grant", "mute", "ban", "rules", "invite", "link", "link", "report"
    ]  # fmt: skip
    leftovers = [text for text in everything if BOB.id in text or "from Bob" in text or BOB.email in text]
    assert leftovers == [], "\n".join(t[:300] for t in leftovers)
