"""Group writes: items submitted while a write is under way go together in the next one — one
transaction for a burst (a thousand agents reporting at once) instead of one each, and one
writer, so what it writes becomes visible in the order written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`write` takes the waiting items (at most `limit`) and returns one result per item, in
    order; each `submit` returns its item's result, or raises the error of its batch."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], limit: int) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as error:  # each submitter hears it
                log.exception("a grouped write failed")
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)
