"""The ``changes`` frame (and a join's ``changes``) read from storage a
chunk at a time until the frame is full, on SQLite: every change comes,
once, in the order of the changes, over as many frames as it takes, with
``more`` true until the last; and a join with ``rev`` says the same.
(What it saves: a read of 1000 large messages for each frame that holds
ten of them; figures in the commit that made it so.)"""

from __future__ import annotations

import asyncio
import json

import pytest

from chatzilla.backends.sqlite import SQLiteBackend
from chatzilla.chat import EDIT, Change
from chatzilla.hub import CHANGES_CHUNK, Hub

from .test_hub import Recorder


@pytest.mark.parametrize("size", [10, 2000])
def test_changes_come_whole_and_in_order_over_chunks_and_frames(tmp_path, size):
    async def scenario():
        backend = SQLiteBackend(str(tmp_path / "c.db"))
        hub = Hub(backend, history_limit=50, max_content=2000)
        client = Recorder("c")
        hub.open(client)
        await hub.join(client, "a@example.com")
        client.texts.clear()
        ids = []
        for _ in range(3 * CHANGES_CHUNK + 7):
            message, _ = await backend.append("lobby", "a@example.com", "😀" * size, None, None)
            ids.append(message.id)
        # Changed in an order of their own, one of them twice.
        order = ids[::2] + ids[1::2] + ids[:1]
        for n, message_id in enumerate(order):
            await backend.change("lobby", message_id, Change(EDIT, f"{'😁' * size} {n}"))
        client.texts.clear()  # their live news
        pages, after = [], 0
        while True:
            await hub.changes(client, after)
            (page,) = [json.loads(t) for t in client.texts]
            client.texts.clear()
            pages.append(page)
            if not page["more"]:
                break
            after = page["messages"][-1]["rev"]
        joiner = Recorder("j")
        hub.open(joiner)
        await hub.join(joiner, "b@example.com", since=ids[-1], rev=0)
        joined = json.loads(joiner.texts[0])
        await backend.close()
        return order, pages, joined

    order, pages, joined = asyncio.run(scenario())
    got = [m["id"] for page in pages for m in page["messages"]]
    assert got == order[1:]  # the one changed twice comes once, at its latest change
    assert all(page["rev"] == len(order) for page in pages)
    assert [m["rev"] for page in pages for m in page["messages"]] == list(range(2, len(order) + 1))
    if size == 10:
        assert len(pages) == 1  # small: all of them in one frame
    else:
        assert len(pages) > 3  # large: a frame holds a few
        assert all(len(json.dumps(page)) < 300_000 for page in pages)
    assert [m["id"] for m in joined["changes"]] == got[: len(joined["changes"])]
    assert joined.get("changes_more") is (True if size == 2000 else None)
    assert joined["rev"] == len(order)
