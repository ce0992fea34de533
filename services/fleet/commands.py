"""Commands for agents: stored first, pushed to an open stream at once, updates fanned out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from services.core.diagnostics import Diagnostics
from services.core.signal import ChangeSignal
from services.fleet.domain import CommandState, CommandUpdate, UpdateKind
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

log = logging.getLogger(__name__)


class CommandBus:
    """The path of a command: orchestrator → store → agent stream; and of its updates back."""

    def __init__(self, store: FleetStore, sessions: SessionRegistry) -> None:
        self._store = store
        self._sessions = sessions
        self._signal = ChangeSignal()
        self._append = asyncio.Lock()
        """Updates are committed one at a time, so sequence numbers become visible in order:
        with PostgreSQL, concurrent transactions could otherwise commit sequence 11 before 10,
        and a watcher that had moved past 11 would never see 10."""

    async def dispatch(self, instance_name: str, command_id: str, payload: bytes) -> None:
        """Persist, then push if the agent is connected; a repeated id changes nothing."""
        if await self._store.add_command(command_id, instance_name, payload):
            delivered = self._sessions.push(instance_name, payload)
            log.info(
                "command dispatched",
                extra={
                    "fields": {
                        "command_id": command_id,
                        "instance": instance_name,
                        "delivered": delivered,
                    }
                },
            )

    async def report(
        self,
        instance_name: str,
        command_id: str,
        kind: UpdateKind,
        state: CommandState,
        diagnostics: Diagnostics,
    ) -> None:
        """Store what the agent reported and wake the watchers."""
        async with self._append:
            update = await self._store.record_update(
                instance_name, command_id, kind, state, diagnostics
            )
        if update is None:
            log.info(
                "ignored duplicate or unknown command update",
                extra={"fields": {"command_id": command_id, "instance": instance_name}},
            )
            return
        self._signal.notify()

    def close(self) -> None:
        """End the watch streams (at shutdown)."""
        self._signal.close()

    async def watch(self, after_sequence: int) -> AsyncIterator[CommandUpdate]:
        """Every update after `after_sequence`, then each new one as it is stored, until the
        bus is closed."""
        cursor = after_sequence
        while True:
            wake = self._signal.current()
            updates = await self._store.updates_after(cursor)
            for update in updates:
                cursor = update.sequence
                yield update
            if not updates:
                if self._signal.closed:
                    return
                await wake.wait()
