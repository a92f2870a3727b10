"""A store beside the messages in the chat's SQLite file: its own connection
on a thread of its own.

Sign-in accounts and moderation keep their tables in the same file as the
messages (WAL lets them work beside the message writer); each owns one
connection used from one thread, so no handler waits on SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .backends.base import StorageError

T = TypeVar("T")


class SQLiteSide:
    """Opens ``path`` (upgrading its schema if the backend has not already)
    on a thread named after ``name``; :meth:`_in_thread` runs work with the
    connection there, a :class:`sqlite3.Error` becoming a
    :class:`StorageError` that starts with ``name``."""

    def __init__(self, path: str, name: str) -> None:
        # Imported here: the SQLite module imports the backend seam, as we do.
        from .backends.sqlite import connect, migrate

        self._name = name
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"chatzilla-{name}")
        self._con: sqlite3.Connection | None = None

        def open_() -> None:
            self._con = connect(path)
            migrate(self._con)

        try:
            # Start-up, before serving: waiting here blocks no handler.
            self._thread.submit(open_).result()
        except (sqlite3.Error, OSError) as exc:
            self._thread.shutdown(wait=False)
            raise StorageError(f"cannot open the database {path!r}: {exc}") from None

    async def _in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            assert self._con is not None
            return work(self._con)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)
        except sqlite3.Error as exc:
            raise StorageError(f"{self._name}: {exc}") from None

    async def close(self) -> None:
        if self._con is None:
            return

        def close_() -> None:
            if self._con is not None:
                self._con.close()
                self._con = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close_)
        self._thread.shutdown(wait=False)
