"""Postgres databases for tests, on the server at
$CHATZILLA_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test,
trust auth).

Most tests get :class:`ReusedDatabase`'s database: one per pytest process
(each xdist worker), migrated once, and emptied for each test that asks for
it. A new database for each test (``CREATE DATABASE``, the migrations,
``DROP DATABASE``) cost Postgres about 0.3 s of CPU (a copy of template1, and
the checkpoint every drop forces), some 60-70 s of the server suite's; an
emptying costs it about 10 ms. :func:`fresh_database` still makes a new,
empty one, for the tests of migrations and of a schema they change.

Without a Postgres the tests that need one are skipped, loudly; with
CHATZILLA_REQUIRE_POSTGRES=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest

from chatzilla.backends.postgres import migrate

ADMIN_URL = os.environ.get("CHATZILLA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)

T = TypeVar("T")


def in_thread(work: Callable[[], Awaitable[T]]) -> T:
    """``await work()`` on an event loop of its own, in a thread of its own
    (a test's event loop may be running in this one)."""
    result: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work()))  # type: ignore[arg-type]
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return result[0]


def admin(base: str, sql: str) -> None:
    """Run ``sql`` on the database at ``base``, from a thread of its own."""

    async def execute() -> None:
        con = await asyncpg.connect(base, timeout=5)
        try:
            await con.execute(sql)
        finally:
            await con.close()

    in_thread(execute)


def _unavailable(base: str, exc: BaseException) -> None:
    reason = f"NO POSTGRES ANSWERS at {base} ({exc}): the Postgres tests did not run"
    if os.environ.get("CHATZILLA_REQUIRE_POSTGRES"):
        pytest.fail(reason)
    pytest.skip(reason)


def _url_of(base: str, name: str) -> str:
    """The URL (postgres://, as platforms give it) of database ``name`` on
    the server of ``base``."""
    server = base.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgres://{server}/{name}"


@contextlib.contextmanager
def fresh_database(base: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server of ``base``; yields its URL."""
    name = f"chatzilla_test_{uuid.uuid4().hex[:12]}"
    try:
        admin(base, f"CREATE DATABASE {name}")
    except ERRORS as exc:
        _unavailable(base, exc)
    try:
        yield _url_of(base, name)
    finally:
        admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


#: What a database's schema is made of (tables and their columns, indexes,
#: sequences, functions, triggers) and its migrations: a test that changed
#: any of it leaves a database the next test must not get.
SCHEMA = """
    SELECT md5(concat_ws('|',
        (SELECT string_agg(c.relname || ':' || c.relkind::text || ':' || coalesce(a.cols, ''), ',' ORDER BY 1)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN (SELECT attrelid,
                             string_agg(attname || ' ' || atttypid::regtype, ',' ORDER BY attnum) AS cols
                        FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped GROUP BY attrelid) a
             ON a.attrelid = c.oid
          WHERE n.nspname = 'public'),
        (SELECT string_agg(p.oid::regprocedure::text || md5(p.prosrc), ',' ORDER BY 1)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'),
        (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal),
        (SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations)))
"""


class ReusedDatabase:
    """This process's migrated database, emptied for each test: its
    connections ended (``pg_terminate_backend``, waiting for each), then
    every row of every table but ``schema_migrations`` deleted and its
    sequences restarted, which is what a database migrated afresh holds
    (the migrations add no rows: checked when it is made). A test that
    changed its schema leaves it dropped and made again."""

    def __init__(self, base: str = ADMIN_URL) -> None:
        self.base = base
        self.name = ""
        self._schema = ""
        self._tables: list[str] = []
        self._sequences: list[str] = []

    def url(self) -> str:
        """The URL of the database, emptied, made at the first call."""
        try:
            if not self.name or not in_thread(self._emptied):
                self.drop()
                self.name = f"chatzilla_test_{uuid.uuid4().hex[:12]}"
                admin(self.base, f"CREATE DATABASE {self.name}")
                in_thread(self._migrated)
        except ERRORS as exc:
            _unavailable(self.base, exc)
        return _url_of(self.base, self.name)

    def drop(self) -> None:
        if self.name:
            admin(self.base, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            self.name = ""

    async def _migrated(self) -> None:
        con = await asyncpg.connect(_url_of(self.base, self.name), timeout=5)
        try:
            await migrate(con)
            self._schema = await con.fetchval(SCHEMA)
            tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            self._tables = [name for (name,) in await con.fetch(tables) if name != "schema_migrations"]
            sequences = "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
            self._sequences = [name for (name,) in await con.fetch(sequences)]
            for table in self._tables:
                assert not await con.fetchval(f"SELECT EXISTS (SELECT FROM {table})"), (
                    f"the migrations put rows in {table}: emptying a database no longer makes it as new"
                )
        finally:
            await con.close()

    async def _emptied(self) -> bool:
        """Empty the database; False if a test changed its schema."""
        try:
            con = await asyncpg.connect(_url_of(self.base, self.name), timeout=5)
        except asyncpg.InvalidCatalogNameError:
            return False  # a test dropped it
        try:
            await con.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            try:
                if await con.fetchval(SCHEMA) != self._schema:
                    return False
            except asyncpg.PostgresError:
                return False  # a test dropped schema_migrations
            async with con.transaction():
                for table in self._tables:
                    await con.execute(f"DELETE FROM {table}")
                for sequence in self._sequences:
                    await con.execute(f"ALTER SEQUENCE {sequence} RESTART")
            return True
        finally:
            await con.close()
