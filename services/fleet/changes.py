"""Fan-out of instance changes (registered, deregistered, retagged) to the fleet's watchers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

RESYNC = ""
"""Sent first, and instead of changes a watcher fell too far behind to receive one by one."""

QUEUE_LIMIT = 1000


CLOSED = None


class InstanceChanges:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str | None]] = set()

    def publish(self, *names: str) -> None:
        for queue in self._queues:
            for name in names:
                try:
                    queue.put_nowait(name)
                except asyncio.QueueFull:
                    _drain(queue)
                    queue.put_nowait(RESYNC)

    def close(self) -> None:
        """End every watch (at shutdown)."""
        for queue in self._queues:
            _drain(queue)
            queue.put_nowait(CLOSED)

    async def watch(self) -> AsyncIterator[str]:
        """RESYNC, then each changed instance's name as it changes, until closed."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            yield RESYNC
            while (name := await queue.get()) is not CLOSED:
                yield name
        finally:
            self._queues.discard(queue)


def _drain(queue: asyncio.Queue[str | None]) -> None:
    while not queue.empty():
        queue.get_nowait()
