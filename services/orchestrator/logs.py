"""Live hook logs: what a deployment's hooks wrote, as agents streamed it, each line with its
target and lifecycle event; followed until the deployment ends.

The fleet keeps the lines by deployment (each command carries its deployment's id) and pushes
new ones; this side adds what only the orchestrator knows: which target and event a command
is (EventRef), and when the story is over. An agent sends an event's output before its result,
and the fleet stores both in that order, so once the deployment has ended one last read from
the cursor holds every line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.core.signal import ChangeSignal
from services.orchestrator.domain import EventRef, HookLine
from services.orchestrator.peers import CommandOutput, FleetClient
from services.orchestrator.states import TERMINAL_DEPLOYMENT
from services.orchestrator.store import DeploymentStore


def hook_lines(batch: list[CommandOutput]) -> list[HookLine]:
    """The fleet's lines with their target and event (lines of commands that are no lifecycle
    event of ours are left out)."""
    lines = []
    for output in batch:
        ref = EventRef.parse(output.command_id)
        if ref is not None:
            lines.append(HookLine(ref.instance_name, ref.name, output.line))
    return lines


class DeploymentLogs:
    def __init__(
        self, deployments: DeploymentStore, fleet: FleetClient, changes: ChangeSignal
    ) -> None:
        self._deployments = deployments
        self._fleet = fleet
        self._changes = changes

    async def watch(
        self, deployment_id: str, target_id: str | None, follow: bool
    ) -> AsyncIterator[list[HookLine]]:
        """Batches of the deployment's hook output (of one target, when named): what is
        there, and with `follow` what comes, until the deployment has ended. NotFound for an
        unknown deployment or a target not in it."""
        deployment = await self._deployments.get(deployment_id)
        if target_id is not None:
            await self._deployments.target(deployment_id, target_id)
        cursor = 0
        if follow and deployment.status not in TERMINAL_DEPLOYMENT:
            async for batch in self._until_ended(deployment_id, target_id):
                cursor = batch[-1].sequence
                yield hook_lines(batch)
        async for batch in self._fleet.output(deployment_id, target_id, cursor, follow=False):
            yield hook_lines(batch)

    async def _until_ended(
        self, deployment_id: str, target_id: str | None
    ) -> AsyncIterator[list[CommandOutput]]:
        """The fleet's pushed batches until the deployment ends (or the server stops)."""
        ended = asyncio.ensure_future(self._ended(deployment_id))
        stream = self._fleet.output(deployment_id, target_id, 0, follow=True)
        try:
            while not ended.done():
                batch = asyncio.ensure_future(anext(stream))
                await asyncio.wait({batch, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not batch.done():
                    batch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await batch
                    ended.result()  # the deployment could not be read: the caller hears why
                    return
                try:
                    lines = batch.result()
                except StopAsyncIteration:
                    return  # the fleet is shutting down
                if lines:
                    yield lines
        finally:
            ended.cancel()
            await stream.aclose()

    async def _ended(self, deployment_id: str) -> None:
        while True:
            wake = self._changes.current()
            deployment = await self._deployments.get(deployment_id)
            if deployment.status in TERMINAL_DEPLOYMENT or self._changes.closed:
                return
            await wake.wait()
