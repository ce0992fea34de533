"""Watchers of instance changes: told to resync first (None), then each changed name, and to
resync again when they fell too far behind to be told one by one."""

from __future__ import annotations

import asyncio

from services.fleet.changes import QUEUE_LIMIT, InstanceChanges


async def test_a_watcher_resyncs_first_then_hears_each_change_until_closed() -> None:
    changes = InstanceChanges()
    watch = changes.watch()
    async with asyncio.timeout(5):
        assert await anext(watch) is None
        changes.publish("web-1", "web-2")
        assert [await anext(watch), await anext(watch)] == ["web-1", "web-2"]
        changes.close()
        assert [name async for name in watch] == []


async def test_a_watcher_too_far_behind_is_told_to_resync_instead() -> None:
    changes = InstanceChanges()
    watch = changes.watch()
    async with asyncio.timeout(5):
        assert await anext(watch) is None
        changes.publish(*(f"web-{n}" for n in range(QUEUE_LIMIT + 1)))
        assert await anext(watch) is None
        changes.publish("web-x")
        assert await anext(watch) == "web-x"
    await watch.aclose()
