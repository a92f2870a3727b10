"""A fresh Postgres database per test, on the server at
$CHATZILLA_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test,
trust auth): ``CREATE DATABASE chatzilla_test_<random>``, dropped afterwards.

Without a Postgres the tests that need one are skipped, loudly; with
CHATZILLA_REQUIRE_POSTGRES=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

ADMIN_URL = os.environ.get("CHATZILLA_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def admin(base: str, sql: str) -> None:
    """Run ``sql`` on the database at ``base``, from a thread of its own (a
    test's event loop may be running in this one)."""

    async def execute() -> None:
        con = await asyncpg.connect(base, timeout=5)
        try:
            await con.execute(sql)
        finally:
            await con.close()

    failed: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(execute())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


@contextlib.contextmanager
def fresh_database(base: str = ADMIN_URL) -> Iterator[str]:
    """A new, empty database on the server of ``base``; yields its URL
    (postgres://, as platforms give it)."""
    name = f"chatzilla_test_{uuid.uuid4().hex[:12]}"
    try:
        admin(base, f"CREATE DATABASE {name}")
    except ERRORS as exc:
        reason = f"NO POSTGRES ANSWERS at {base} ({exc}): the Postgres tests did not run"
        if os.environ.get("CHATZILLA_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = base.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgres://{server}/{name}"
    finally:
        admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
