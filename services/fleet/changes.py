"""Fan-out of instance changes (registered, deregistered, retagged) to the fleet's watchers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from enum import Enum

QUEUE_LIMIT = 1000


class _Mark(Enum):
    RESYNC = "resync"
    """Sent first, and instead of changes a watcher fell too far behind to receive one by one."""
    CLOSED = "closed"


class InstanceChanges:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str | _Mark]] = set()

    def publish(self, *names: str) -> None:
        for queue in self._queues:
            for name in names:
                try:
                    queue.put_nowait(name)
                except asyncio.QueueFull:
                    _drain(queue)
                    queue.put_nowait(_Mark.RESYNC)

    def close(self) -> None:
        """End every watch (at shutdown)."""
        for queue in self._queues:
            _drain(queue)
            queue.put_nowait(_Mark.CLOSED)

    async def watch(self) -> AsyncIterator[str | None]:
        """None (resync: any instance may have changed), then each changed instance's name as
        it changes — None again where changes were lost — until closed."""
        queue: asyncio.Queue[str | _Mark] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            yield None
            while (item := await queue.get()) is not _Mark.CLOSED:
                yield None if item is _Mark.RESYNC else item
        finally:
            self._queues.discard(queue)


def _drain(queue: asyncio.Queue[str | _Mark]) -> None:
    while not queue.empty():
        queue.get_nowait()
