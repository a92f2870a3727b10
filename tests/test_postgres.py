"""Postgres's own: ``python -m chatzilla migrate`` (a platform's release
phase), versions, start-up against a database it cannot use, and the chat
through a restart of Postgres (a private cluster) and a killed process. The
backend's behaviour is tested with the other backends' (test_sqlite_backend,
test_backend_contract, test_rooms_history, test_redis's many processes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from chatzilla.backends.postgres import ERRORS, PostgresBackend, create_pool
from chatzilla.backends.postgres_schema import SCHEMA_VERSION

from .helpers import eventually, free_port
from .postgres import admin
from .sockjs_client import WebSocketClient
from .test_cli import ROOT, clean_env
from .test_redis import (  # noqa: F401 (fixtures)
    health,
    prefix,
    redis_flags,
    redis_url,
    run,
    servers,
    wait_for,
)


def migrate(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatzilla", "migrate", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_creates_the_schema_once(empty_database_url):
    first = migrate(DATABASE_URL=empty_database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database schema at version {SCHEMA_VERSION} (was 0)"
    again = migrate("--database-url", empty_database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"database schema at version {SCHEMA_VERSION}"


def test_migrate_without_a_database_is_no_error():
    # The Procfile's release phase runs it on an app without Postgres too.
    result = migrate()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no DATABASE_URL: nothing to migrate")


def test_unreachable_database_is_one_line(database_url):
    # A database that does not exist on a server that does.
    missing = database_url.rsplit("/", 1)[0] + "/chatzilla_no_such_database"
    for result in (
        migrate(DATABASE_URL=missing),
        subprocess.run(
            [sys.executable, "-m", "chatzilla", "--port", "0", "--database-url", missing],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        ),
    ):
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("chatzilla: cannot reach the database"), lines
        assert "Traceback" not in result.stderr


def test_a_newer_database_is_refused(empty_database_url):
    assert migrate(DATABASE_URL=empty_database_url).returncode == 0
    admin(empty_database_url, f"INSERT INTO schema_migrations (version) VALUES ({SCHEMA_VERSION + 1})")
    result = migrate(DATABASE_URL=empty_database_url)
    assert result.returncode == 2
    assert "newer than this Chatzilla" in result.stderr and "upgrade Chatzilla" in result.stderr


# -- Postgres ending a connection as it answers ------------------------------------


async def _waiting_on_lock(con: asyncpg.Connection) -> int:
    """The process id of the Postgres backend that waits for a lock in
    ``con``'s database (there is one, or soon will be)."""
    for _ in range(3000):
        pid = await con.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if pid is not None:
            return pid
        await asyncio.sleep(0.01)
    raise AssertionError("nothing waited on a lock")


def _answer_then_end(url: str, locker: asyncpg.Connection, waiting: int) -> None:
    """With this thread's event loop held: end ``locker``'s backend (its
    lock goes, so ``waiting``'s statement runs and answers), wait until
    ``waiting`` has answered, and end it too. The answer and the end then
    wait together for the loop, as when a busy process reads late during
    a restart."""
    admin(
        url,
        f"""DO $$ BEGIN
            PERFORM pg_terminate_backend({locker.get_server_pid()}, 10000);
            FOR i IN 1..1000 LOOP
                PERFORM pg_stat_clear_snapshot();
                -- Waiting for the client's next message: it has answered.
                EXIT WHEN (SELECT wait_event FROM pg_stat_activity WHERE pid = {waiting}) = 'ClientRead';
                PERFORM pg_sleep(0.01);
            END LOOP;
            PERFORM pg_terminate_backend({waiting}, 10000);
        END $$""",
    )


@pytest.mark.gen_test(timeout=60)
async def test_postgres_ending_a_pool_connection_as_it_answers(empty_database_url):
    # Both were InternalClientError from asyncpg 0.32, which the backends
    # let through: "release() called on a free connection holder" after a
    # statement's answer, and "cannot switch to state 12; another
    # operation (2) is in progress" after a new statement's preparation.
    pool = await create_pool(empty_database_url, max_size=1)
    try:
        await pool.execute("CREATE TABLE t (x integer)")
        assert await pool.fetchval("SELECT count(*) + 7 FROM t") == 7  # prepared on the connection
        locker = await asyncpg.connect(empty_database_url)
        await locker.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        query = asyncio.ensure_future(pool.fetchval("SELECT count(*) + 7 FROM t"))
        _answer_then_end(empty_database_url, locker, await _waiting_on_lock(locker))
        assert await query == 7  # answered: the query succeeded
        assert await pool.fetchval("SELECT 8") == 8  # and the pool goes on

        locker = await asyncpg.connect(empty_database_url)
        await locker.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        query = asyncio.ensure_future(pool.fetchval("SELECT count(*) + 9 FROM t"))
        _answer_then_end(empty_database_url, locker, await _waiting_on_lock(locker))
        with pytest.raises(ERRORS):  # prepared, never run: a lost connection
            await query
        assert await pool.fetchval("SELECT count(*) + 9 FROM t") == 9
    finally:
        await pool.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_heartbeat_lives_on_when_postgres_ends_its_connection_as_it_answers(database_url):
    # The flake of the restart test below: the heartbeat task died of an
    # InternalClientError, and the process stopped proving itself alive.
    backend = PostgresBackend(database_url, heartbeat=0.05)
    await backend.open()
    watcher = await asyncpg.connect(database_url)
    try:
        backend.start(lambda *a: None, lambda *a: None)
        await backend.enter("lobby", "alice@example.com", object())
        for _ in range(2):  # whichever of its statements is caught, as prepared or as run
            locker = await asyncpg.connect(database_url)
            await locker.execute("BEGIN; LOCK TABLE nodes IN EXCLUSIVE MODE")
            _answer_then_end(database_url, locker, await _waiting_on_lock(locker))
            seen = await watcher.fetchval("SELECT seen FROM nodes WHERE node = $1", backend.node)
            for _ in range(1000):
                await asyncio.sleep(0.05)
                now = await watcher.fetchval("SELECT seen FROM nodes WHERE node = $1", backend.node)
                if now > seen:
                    break
            else:
                raise AssertionError("the heartbeat stopped")
        await eventually(lambda: backend.healthy, what="healthy again")
    finally:
        await watcher.close()
        await backend.close()


# -- Postgres restarted mid-run, a chat process killed ----------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A Postgres cluster of this test's own (initdb, pg_ctl), on a free
    port, so that restarting it stops nobody else's. Run as the ``postgres``
    user when this is root (initdb refuses root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chatzilla-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust"]
        subprocess.run(
            [*self._as, *initdb],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-w", *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> PrivatePostgres:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        self._ctl("-o", options, "-l", str(self.dir / "log"), "start")
        return self

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres():
    if not (PG_BIN / "initdb").exists():
        reason = f"no Postgres binaries in {PG_BIN}: the restart test did not run"
        if os.environ.get("CHATZILLA_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PrivatePostgres()
    try:
        yield cluster.start()
    finally:
        cluster.remove()


async def _say_until_stored(client, content: str, ref: str, tries: int = 100) -> dict:
    """Send ``content`` with ``ref`` until it is acknowledged, as the page does
    (the same ref: never stored twice); return its ``sent``."""
    for _ in range(tries):
        await client.send({"type": "message", "content": content, "ref": ref})
        frame = await client.recv(timeout=10)
        while frame["type"] in ("presence", "message"):
            frame = await client.recv(timeout=10)
        if frame["type"] == "sent":
            return frame
        assert frame["type"] == "error" and frame["code"] in ("unavailable", "outcome_unknown"), frame
        await asyncio.sleep(0.2)
    raise AssertionError(f"{ref} was never stored")


@pytest.fixture(params=["alone", "with redis"])
def fan_out(request) -> list[str]:
    """Flags beside the database's: none (Postgres carries fan-out and
    presence too), or a Redis that carries them."""
    if request.param == "alone":
        return []
    return redis_flags(request.getfixturevalue("redis_url"), request.getfixturevalue("prefix"))


def test_chat_recovers_after_postgres_restarts_and_loses_nothing(private_postgres, fan_out, servers):  # noqa: F811
    one, two = servers(["--database-url", private_postgres.url, *fan_out])

    async def scenario():
        alice = await WebSocketClient(one.url).connect()
        bob = await WebSocketClient(two.url).connect()
        await alice.join("alice@example.com")
        await bob.join("bob@example.com")
        await alice.expect("presence")
        acks = [await _say_until_stored(alice, f"before {i}", f"b{i}") for i in range(3)]

        await asyncio.to_thread(private_postgres.stop)
        for _ in range(50):  # until the server notices Postgres is gone
            await alice.send({"type": "message", "content": "while down", "ref": "down"})
            frame = await alice.recv(timeout=10)
            while frame["type"] in ("presence", "message"):
                frame = await alice.recv(timeout=10)
            if frame["type"] == "error":
                break
            acks.append(frame)  # stored before it went: acknowledged, kept
            await asyncio.sleep(0.1)
        assert frame["type"] == "error" and frame["code"] in ("unavailable", "outcome_unknown"), frame
        await asyncio.to_thread(wait_for, lambda: health(one)["status"] == "degraded", 15, "degraded")
        page = await asyncio.to_thread(urllib.request.urlopen, f"{one.url}/", None, 5)
        with page:
            assert page.status == 200  # pages still load

        await asyncio.to_thread(private_postgres.start)
        await asyncio.to_thread(
            wait_for,
            lambda: health(one)["status"] == "ok" and health(two)["status"] == "ok",
            20,
            "both processes healthy",
        )
        acks.append(await _say_until_stored(alice, "while down", "down"))
        acks.append(await _say_until_stored(alice, "after", "after"))
        # Bob, on the other process, hears what was said while it was down
        # and after, in order: his process read what it missed.
        seen = []
        while len(seen) < 2 or seen[-1] != "after":
            frame = await bob.recv(timeout=15)
            if frame["type"] == "message" and not frame["content"].startswith("before"):
                seen.append(frame["content"])
        assert seen[-2:] == ["while down", "after"]

        # Bob's process killed: what he was acknowledged is kept all the same.
        acks_bob = [await _say_until_stored(bob, f"bob {i}", f"k{i}") for i in range(3)]
        two.proc.send_signal(signal.SIGKILL)
        carol = await WebSocketClient(one.url).connect()
        history = (await carol.join("carol@example.com"))["history"]
        ids = [m["id"] for m in history]
        assert ids == sorted(set(ids)), ids  # each once, in order
        assert {a["id"] for a in acks + acks_bob} <= set(ids)
        assert [m["content"] for m in history].count("while down") == 1
        for client in (alice, bob, carol):
            await client.close()

    run(scenario(), timeout=120)
    two.stop(signal.SIGKILL)
    status, err = one.stop()
    assert status == 0
    assert "Traceback" not in err, err
