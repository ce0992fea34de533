"""Commands for agents: stored first, pushed to an open stream at once, updates fanned out —
and failed by the fleet itself when their agent does not act in time, so that no command waits
for a host that may never come back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from deploy.backoff import Backoff
from deploy.hookoutput import OutputLine
from services.core.batching import Batcher
from services.core.clock import utcnow
from services.core.diagnostics import Diagnostics
from services.core.errors import DeployError, NotFound
from services.core.metrics import COMMANDS_IN_FLIGHT
from services.core.signal import ChangeSignal
from services.fleet.convert import cancel_message, command_message
from services.fleet.domain import (
    FINISHED_COMMAND,
    OUTPUT_LINES_PER_MESSAGE,
    CommandState,
    CommandUpdate,
    DeadlinePolicy,
    NewCommand,
    Output,
    Report,
    Stored,
    UnfinishedCommand,
    UpdateKind,
    agent_lost,
    agent_offline,
    missed_deadline,
    stopped_offline,
)
from services.fleet.recent import RecentUpdates
from services.fleet.sessions import SessionRegistry
from services.fleet.store import UPDATE_BATCH, FleetStore

log = logging.getLogger(__name__)

WRITE_BATCH = 500
"""Reports (or commands) written in one transaction at most."""


class CommandBus:
    """The path of a command: orchestrator → store → agent stream; and of its updates back."""

    def __init__(
        self, store: FleetStore, sessions: SessionRegistry, policy: DeadlinePolicy
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._policy = policy
        self._signal = ChangeSignal()
        self._recent = RecentUpdates()
        """What the reports' writer stored last: caught-up watchers read on from memory."""
        self._reports = Batcher(self._record, WRITE_BATCH)
        """The one writer of updates and hook output: sequence numbers become visible in order
        (with PostgreSQL, concurrent transactions could commit sequence 11 before 10, and a
        watcher that had moved past 11 would never see 10), and a burst of reports is one
        commit — with the output sent among them, which never waits for a write of its own."""
        self._commands = Batcher(store.add_commands, WRITE_BATCH)
        """Commands dispatched together (a wave of a deployment) are stored together."""
        self._deadlines = ChangeSignal()
        """Woken when a deadline earlier than the one the deadline loop sleeps towards is set."""
        self._next_deadline: datetime | None = None
        self._offline_checks: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, CommandState] = {}
        """Unfinished commands by id (for the in-flight gauge: no query per scrape)."""
        for state in (CommandState.PENDING, CommandState.IN_PROGRESS):
            COMMANDS_IN_FLIGHT.labels(state).set_function(functools.partial(self._count, state))

    async def start(self) -> None:
        """Enforce deadlines, and give every instance with unfinished commands the offline
        window to come back (to this process) before its commands fail; serve caught-up
        watchers from memory."""
        self._recent.cover_from(await self._store.last_sequence())
        self._spawn(self._enforce_deadlines())
        unfinished = await self._store.unfinished()
        self._in_flight.update((c.id, c.state) for c in unfinished)
        for name in {c.instance_name for c in unfinished}:
            self.watch_offline(name)

    async def dispatch(
        self, instance_name: str, commands: Sequence[tuple[str, bytes]], deployment_id: str | None
    ) -> None:
        """Persist commands (id, payload) for one instance — together, one transaction — then
        push them in order if its agent is connected; a repeated id changes nothing."""
        deadline = self._policy.start_deadline(utcnow())
        stored = await asyncio.gather(
            *(
                self._commands.submit(
                    NewCommand(command_id, instance_name, payload, deadline, deployment_id)
                )
                for command_id, payload in commands
            )
        )
        if Stored.UNREGISTERED in stored:
            raise NotFound(f"instance {instance_name!r} is not registered")
        new = [c for c, how in zip(commands, stored, strict=True) if how is Stored.ADDED]
        if not new:
            return
        self._deadline_set(deadline)
        delivered = True
        for command_id, payload in new:
            self._in_flight[command_id] = CommandState.PENDING
            delivered = self._sessions.push(instance_name, command_message(payload)) and delivered
        if not delivered:
            self.watch_offline(instance_name)
        log.info(
            "commands dispatched",
            extra={
                "fields": {
                    "command_ids": [command_id for command_id, _ in new],
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
        timeout_seconds: int = 0,
    ) -> None:
        """Store what the agent (or the fleet, for it) reported and wake the watchers. A start
        sets the command's end deadline from the time its scripts may take. Reports that
        arrive while others are being written are written together, in one transaction."""
        deadline = None
        if kind is UpdateKind.STARTED:
            deadline = self._policy.end_deadline(utcnow(), timeout_seconds)
        report = Report(instance_name, command_id, kind, state, diagnostics, deadline)
        update = await self._reports.submit(report)
        if not isinstance(update, CommandUpdate):
            log.info(
                "ignored duplicate or unknown command update",
                extra={"fields": {"command_id": command_id, "instance": instance_name}},
            )
            return
        if update.state in FINISHED_COMMAND:
            self._in_flight.pop(command_id, None)
        else:
            self._in_flight[command_id] = update.state
        if deadline is not None:
            self._deadline_set(deadline)
        self._signal.notify()

    async def output(self, instance_name: str, command_id: str, lines: Sequence[OutputLine]) -> int:
        """Store hook output with the reports, in the order the agent sent them (so never after
        its command's end); how many lines were kept (none for a command of another instance,
        a finished or unknown one, or one past its bound)."""
        kept = await self._reports.submit(
            Output(instance_name, command_id, tuple(lines[:OUTPUT_LINES_PER_MESSAGE]))
        )
        return kept if isinstance(kept, int) else 0

    async def queued(self, instance_name: str, command_id: str) -> None:
        """The agent holds the command behind the one it runs: it may start as late as the
        running one may end."""
        await self._store.extend(instance_name, command_id, self._policy.end_deadline(utcnow(), 0))

    async def reconcile(self, instance_name: str, held: Sequence[str]) -> None:
        """The agent holds only `held` (after re-sending its reports): its other started
        commands were lost with an earlier agent process, and fail."""
        holding = set(held)
        for command in await self._store.unfinished(instance_name):
            if command.state is CommandState.IN_PROGRESS and command.id not in holding:
                await self._fail(command, agent_lost(instance_name))

    async def cancel(self, command_ids: Sequence[str], reason: str) -> None:
        """Tell the agents running (or holding) these commands to stop them; a command whose
        agent is offline fails now, one whose agent does not answer fails at a short deadline."""
        deadline = self._policy.cancel_deadline(utcnow())
        for command in await self._store.cancel(command_ids, deadline):
            message = cancel_message(command.id, reason)
            if self._sessions.push(command.instance_name, message):
                self._deadline_set(deadline)
            else:
                await self._fail(command, stopped_offline(command.instance_name, reason))

    def watch_offline(self, instance_name: str) -> None:
        """Fail the instance's unfinished commands once its agent has been silent for the
        offline window, unless it is heard from again before (checked when the window ends)."""
        previous = self._offline_checks.pop(instance_name, None)
        if previous is not None:
            previous.cancel()
        window = self._sessions.offline_window(instance_name)
        delay = max(window - self._sessions.silent_seconds(instance_name), 0)
        self._offline_checks[instance_name] = asyncio.get_running_loop().call_later(
            delay, self._check_offline, instance_name
        )

    def close(self) -> None:
        """End the watch streams and the deadline loop (at shutdown)."""
        self._signal.close()
        self._deadlines.close()
        for check in self._offline_checks.values():
            check.cancel()
        for task in self._tasks:
            task.cancel()

    async def stopped(self) -> None:
        """Once closed: wait for the deadline loop and the fleet's own failures to end, so that
        none is inside a transaction when the database closes."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def watch(
        self, after_sequence: int, finished_only: bool = False
    ) -> AsyncIterator[CommandUpdate]:
        """Every update after `after_sequence` (`finished_only`: of commands that finished),
        then each new one as it is stored, until the bus is closed."""
        cursor = after_sequence
        while True:
            wake = self._signal.current()
            updates = self._recent.after(cursor, finished_only, UPDATE_BATCH)
            if updates is None:
                updates, cursor = await self._store.updates_after(cursor, finished_only)
            elif updates:
                cursor = updates[-1].sequence
            for update in updates:
                yield update
            if not updates:
                if self._signal.closed:
                    return
                await wake.wait()

    async def _record(self, items: Sequence[Report | Output]) -> list[CommandUpdate | int | None]:
        """The reports' writer: store a burst, and keep its updates for the watchers (before
        anyone is told of them)."""
        results = await self._store.record_updates(items)
        self._recent.add(r for r in results if isinstance(r, CommandUpdate))
        return results

    def _check_offline(self, instance_name: str) -> None:
        self._offline_checks.pop(instance_name, None)
        if self._sessions.is_offline(instance_name):
            silent = self._sessions.silent_seconds(instance_name)
            self._spawn(self._fail_offline(instance_name, int(silent)))

    async def _fail_offline(self, instance_name: str, silent_seconds: int) -> None:
        for command in await self._store.unfinished(instance_name):
            await self._fail(command, agent_offline(instance_name, silent_seconds))

    async def _enforce_deadlines(self) -> None:
        """Sleep until the earliest deadline (or an earlier one is set), fail what is overdue."""
        backoff = Backoff()
        while not self._deadlines.closed:
            wake = self._deadlines.current()
            try:
                for command in await self._store.overdue(utcnow()):
                    await self._fail(command, missed_deadline(command))
                self._next_deadline = await self._store.next_deadline()
            except (DeployError, SQLAlchemyError, OSError) as error:  # look again soon
                log.warning("deadline check failed", extra={"fields": {"error": str(error)}})
                await asyncio.sleep(backoff.next_delay() or backoff.maximum)
                continue
            backoff.reset()
            timeout = None
            if self._next_deadline is not None:
                timeout = max((self._next_deadline - utcnow()).total_seconds(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _count(self, state: CommandState) -> int:
        """Read by the metrics thread: the copy is taken in one step (under the GIL), so the
        event loop changing the dict meanwhile cannot break it."""
        return list(self._in_flight.values()).count(state)

    def _deadline_set(self, deadline: datetime) -> None:
        if self._next_deadline is None or deadline < self._next_deadline:
            self._next_deadline = deadline
            self._deadlines.notify()

    async def _fail(self, command: UnfinishedCommand, diagnostics: Diagnostics) -> None:
        log.warning(
            "command failed by the fleet",
            extra={
                "fields": {
                    "command_id": command.id,
                    "instance": command.instance_name,
                    "error_code": diagnostics.error_code,
                    "error": diagnostics.message,
                }
            },
        )
        await self.report(
            command.instance_name,
            command.id,
            UpdateKind.FINISHED,
            CommandState.FAILED,
            diagnostics,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
