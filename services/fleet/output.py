"""Hook output agents stream: read back and followed by the orchestrator (WatchCommandOutput),
forgotten after `RETENTION`. The fleet's report writer stores it (CommandBus.output).

Every bound holds whatever an agent sends: at most `OUTPUT_LINES_PER_MESSAGE` lines of a
message are taken, `OUTPUT_LINES_PER_COMMAND` per command in all (the agent streams 1,000 and
its notes), each line cut to 1,024 characters on arrival (deploy.hookoutput), and only for an
unfinished command of the sending instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from services.core.clock import utcnow
from services.core.errors import DeployError
from services.core.signal import ChangeSignal
from services.fleet.domain import StoredOutput
from services.fleet.store import FleetStore

log = logging.getLogger(__name__)

READ_BATCH = 500
RETENTION = timedelta(days=14)
PRUNE_EVERY_SECONDS = 3600.0


class HookOutput:
    """The fleet's end of live hook logs: its followers, woken as lines are stored."""

    def __init__(self, store: FleetStore) -> None:
        self._store = store
        self._signal = ChangeSignal()
        self._pruner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pruner = asyncio.ensure_future(self._prune())

    def close(self) -> None:
        """End the follow streams and the pruning (at shutdown)."""
        self._signal.close()
        if self._pruner is not None:
            self._pruner.cancel()

    def stored(self) -> None:
        """New lines were stored: wake the followers."""
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
