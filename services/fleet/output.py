"""Hook output agents stream: kept per command within bounds, read back and followed by the
orchestrator (WatchCommandOutput), forgotten after `RETENTION`.

Every bound holds whatever an agent sends: at most `LINES_PER_MESSAGE` lines of a message are
taken, `LINES_PER_COMMAND` per command in all (the agent streams 1,000 and its notes), each
line cut to 1,024 characters on arrival (deploy.hookoutput), and only for an unfinished command
of the sending instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from deploy.hookoutput import OutputLine
from services.core.clock import utcnow
from services.core.errors import DeployError
from services.core.signal import ChangeSignal
from services.fleet.domain import StoredOutput
from services.fleet.store import FleetStore

log = logging.getLogger(__name__)

LINES_PER_MESSAGE = 100
LINES_PER_COMMAND = 1100
READ_BATCH = 500
RETENTION = timedelta(days=14)
PRUNE_EVERY_SECONDS = 3600.0


class HookOutput:
    """The fleet's end of live hook logs: stores what agents send, wakes the followers."""

    def __init__(self, store: FleetStore) -> None:
        self._store = store
        self._signal = ChangeSignal()
        self._append = asyncio.Lock()
        """Lines are committed one batch at a time, so sequence numbers become visible in
        order (a follower past sequence 11 must never miss a 10 committed later)."""
        self._pruner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pruner = asyncio.ensure_future(self._prune())

    def close(self) -> None:
        """End the follow streams and the pruning (at shutdown)."""
        self._signal.close()
        if self._pruner is not None:
            self._pruner.cancel()

    async def add(self, instance_name: str, command_id: str, lines: Sequence[OutputLine]) -> None:
        async with self._append:
            stored = await self._store.add_output(
                instance_name, command_id, lines[:LINES_PER_MESSAGE], LINES_PER_COMMAND
            )
        if stored:
            self._signal.notify()

    async def watch(
        self, deployment_id: str, instance_name: str | None, after_sequence: int, follow: bool
    ) -> AsyncIterator[list[StoredOutput]]:
        """Batches of the deployment's lines after the cursor; with `follow`, then each new
        batch as it is stored, until the caller stops reading or the fleet shuts down."""
        cursor = after_sequence
        while True:
            wake = self._signal.current()
            lines = await self._store.output_after(deployment_id, instance_name, cursor, READ_BATCH)
            if lines:
                cursor = lines[-1].sequence
                yield lines
                continue
            if not follow or self._signal.closed:
                return
            await wake.wait()

    async def _prune(self) -> None:
        while True:
            try:
                pruned = await self._store.prune_output(utcnow() - RETENTION)
            except (DeployError, SQLAlchemyError, OSError) as error:  # tried again next time
                log.warning("hook output pruning failed", extra={"fields": {"error": str(error)}})
            else:
                if pruned:
                    log.info("old hook output forgotten", extra={"fields": {"lines": pruned}})
            await asyncio.sleep(PRUNE_EVERY_SECONDS)
