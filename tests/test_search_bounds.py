"""A search's ``before`` at the edges of what a frame may hold (any whole
number up to 2^63 - 1), on every backend: it means "older than that", as a
small one does; it neither fails (SQLite took it past its integers and
answered ``internal``) nor reads another room's messages in its place."""

from __future__ import annotations

import asyncio

import pytest

from chatzilla.backends.base import SearchUnavailable
from chatzilla.backends.sqlite import ROOM_DOCS
from chatzilla.protocol import MAX_INTEGER

from .test_backend_contract import make_backend  # noqa: F401  (the fixture)


def test_a_search_before_any_id_finds_the_rooms_newest(make_backend):  # noqa: F811
    async def scenario():
        backend = await make_backend()
        backend.start(lambda *_: None, lambda *_: None)
        try:
            for room, count in (("lobby", 3), ("dev", 30)):
                await backend.enter(room, "a@example.com", "tab")
                for n in range(count):
                    await backend.append(room, "a@example.com", f"lunch {room} {n}", None, "tab")
            try:
                return [
                    [m.content for m in await backend.search("lobby", ["lunch"], before, 5)]
                    for before in (None, ROOM_DOCS + 10, MAX_INTEGER)
                ]
            except SearchUnavailable:
                pytest.skip("this backend has no search")
        finally:
            await backend.close()

    newest_first = ["lunch lobby 2", "lunch lobby 1", "lunch lobby 0"]
    assert asyncio.run(scenario()) == [newest_first] * 3
