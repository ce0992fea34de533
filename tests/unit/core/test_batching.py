"""Grouped writes: what is submitted during a write goes in the next one, results come back to
each submitter in order, and a failed write fails its own batch only."""

from __future__ import annotations

import asyncio

import pytest

from services.core.batching import Batcher


async def test_items_submitted_during_a_write_go_together_in_the_next() -> None:
    writes: list[list[int]] = []
    first_started = asyncio.Event()
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        first_started.set()
        await release.wait()
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(write, limit=3)
    first = asyncio.ensure_future(batcher.submit(1))
    await first_started.wait()  # the first write is under way
    later = [asyncio.ensure_future(batcher.submit(n)) for n in (2, 3, 4, 5)]
    await asyncio.sleep(0)  # one turn of the loop: the four submissions queue up
    release.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40, 50]
    assert writes == [[1], [2, 3, 4], [5]]  # at most `limit` per write


async def test_a_failed_write_fails_its_batch_only() -> None:
    async def write(items: list[int]) -> list[int]:
        if 2 in items:
            raise RuntimeError("the database is away")
        return items

    batcher: Batcher[int, int] = Batcher(write, limit=1)
    failing, fine = batcher.submit(2), batcher.submit(3)
    results = await asyncio.gather(failing, fine, return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] == 3
    with pytest.raises(RuntimeError):
        await batcher.submit(2)
