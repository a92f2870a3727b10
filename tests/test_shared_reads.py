"""chatzilla.shared_reads: a crowd's questions share reads, none staler than asked."""

from __future__ import annotations

import asyncio

import pytest

from chatzilla.shared_reads import SharedReads


class Store:
    """A value per key that tests change; each read waits until released."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {"room": 0}
        self.reads: list[str] = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def read(self, key: str) -> int:
        value = self.values[key]  # what is stored when the read starts
        self.reads.append(key)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return value


async def _started(store: Store, n: int) -> None:
    while len(store.reads) < n:
        await asyncio.sleep(0)


async def _behind_a_read(reads: SharedReads, store: Store, n: int, stored: int | None = None):
    """A question whose read is under way (then ``stored`` stored, if given),
    and ``n`` more asked meanwhile: their tasks."""
    first = asyncio.ensure_future(reads.get("room"))
    await _started(store, 1)
    if stored is not None:
        store.values["room"] = stored
    crowd = [asyncio.ensure_future(reads.get("room")) for _ in range(n)]
    await asyncio.sleep(0)
    return first, crowd


def test_a_lone_question_reads_at_once():
    async def scenario():
        store = Store()
        store.gate.set()
        reads = SharedReads(store.read)
        return await reads.get("room"), await reads.get("room"), store.reads

    assert asyncio.run(scenario()) == (0, 0, ["room", "room"])


def test_those_who_ask_during_a_read_share_the_next_which_sees_what_was_stored_before():
    async def scenario():
        store = Store()
        reads = SharedReads(store.read)
        # 1 is stored after the first read started, before the crowd asks.
        first, crowd = await _behind_a_read(reads, store, 50, stored=1)
        store.gate.set()
        results = await asyncio.gather(first, *crowd)
        return results, store.reads

    results, made = asyncio.run(scenario())
    assert results == [0] + [1] * 50  # none of the crowd got the read begun before it asked
    assert made == ["room", "room"]


def test_keys_are_read_apart():
    async def scenario():
        store = Store()
        store.values["other"] = 7
        reads = SharedReads(store.read)
        both = asyncio.gather(reads.get("room"), reads.get("other"))
        await _started(store, 2)
        store.gate.set()
        return await both

    assert asyncio.run(scenario()) == [0, 7]


def test_a_failed_read_fails_everyone_who_shared_it_and_the_next_question_reads_again():
    async def scenario():
        store = Store()
        reads = SharedReads(store.read)
        first, crowd = await _behind_a_read(reads, store, 3)
        store.fail = OSError("storage is down")
        store.gate.set()
        outcomes = await asyncio.gather(first, *crowd, return_exceptions=True)
        store.fail = None
        return outcomes, await reads.get("room")

    outcomes, after = asyncio.run(scenario())
    assert [type(o) for o in outcomes] == [OSError] * 4
    assert after == 0


def test_one_waiter_cancelled_leaves_the_shared_read_to_the_others():
    async def scenario():
        store = Store()
        reads = SharedReads(store.read)
        first, (quitter, stayer) = await _behind_a_read(reads, store, 2)
        quitter.cancel()
        store.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await quitter
        return await first, await stayer

    assert asyncio.run(scenario()) == (0, 0)
