"""Commands an agent is sent together (a chain): stored in order, given to a reconnecting
agent in that order, kept alive while the agent runs the ones ahead of them, and ended
Skipped when the agent never starts them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.db import open_database
from services.core.diagnostics import Diagnostics
from services.fleet.domain import CommandState, NewCommand, Report, Stored, UpdateKind
from services.fleet.store import FleetStore

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHAIN = [f"d-1:web-1:{i}:E{i}" for i in range(5)]


@contextlib.asynccontextmanager
async def chained_store(tmp_path: Path) -> AsyncIterator[FleetStore]:
    """A fleet with a chain of five commands for web-1 and one command for web-2."""
    db = await open_database(f"sqlite:///{tmp_path / 'fleet.db'}", "fleet")
    store = FleetStore(db)
    await store.register("web-1", [])
    await store.register("web-2", [])
    stored = await store.add_commands(
        [NewCommand(c, "web-1", c.encode(), T0 + timedelta(seconds=60)) for c in CHAIN]
        + [NewCommand("d-1:web-2:0:E0", "web-2", b"other", T0 + timedelta(seconds=60))]
    )
    assert stored == [Stored.ADDED] * 6
    try:
        yield store
    finally:
        await db.close()


def report(command_id: str, state: CommandState, deadline: datetime | None = None) -> Report:
    kind = UpdateKind.STARTED if state is CommandState.IN_PROGRESS else UpdateKind.FINISHED
    return Report(command_id.split(":")[1], command_id, kind, state, Diagnostics(), deadline)


def test_a_chain_stored_together_reaches_a_reconnecting_agent_in_order(tmp_path: Path) -> None:
    async def scenario() -> list[bytes]:
        async with chained_store(tmp_path) as store:
            return await store.pending_commands("web-1")

    assert asyncio.run(scenario()) == [c.encode() for c in CHAIN]


def test_a_started_command_keeps_the_ones_held_behind_it_alive(tmp_path: Path) -> None:
    """The agent does not say it holds the rest of a chain: the start of the first lets them
    wait as long as it may run, and only on the same instance."""
    end = T0 + timedelta(hours=1)

    async def scenario() -> dict[str, datetime | None]:
        async with chained_store(tmp_path) as store:
            await store.record_updates([report(CHAIN[0], CommandState.IN_PROGRESS, end)])
            overdue = await store.overdue(T0 + timedelta(minutes=30))
            return {c.id: c.instance_name for c in overdue} | {"next": await store.next_deadline()}

    due = asyncio.run(scenario())
    # web-2's command was not held: its start deadline (60 s) passed; web-1's were extended
    assert due == {"d-1:web-2:0:E0": "web-2", "next": T0 + timedelta(seconds=60)}


def test_a_command_never_started_ends_skipped_and_only_once(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        async with chained_store(tmp_path) as store:
            updates = await store.record_updates(
                [
                    report(CHAIN[0], CommandState.IN_PROGRESS, T0 + timedelta(hours=1)),
                    report(CHAIN[0], CommandState.FAILED),
                    report(CHAIN[1], CommandState.SKIPPED),
                    report(CHAIN[1], CommandState.FAILED),  # after its end: ignored
                    report(CHAIN[0], CommandState.SKIPPED),  # one that ran is never Skipped
                ]
            )
        return [None if u is None else u.state for u in updates]

    assert asyncio.run(scenario()) == [
        CommandState.IN_PROGRESS,
        CommandState.FAILED,
        CommandState.SKIPPED,
        None,
        None,
    ]


def test_updates_are_numbered_in_the_order_reported_and_ends_can_be_read_alone(
    tmp_path: Path,
) -> None:
    """A burst is numbered as it was reported; the orchestrator's stream (finished only) skips
    the starts and reads on from the last end; a report naming another instance's command is
    refused."""
    end = T0 + timedelta(hours=1)

    async def scenario() -> tuple[list[object], list[tuple[str, str]], list[tuple[str, str]], int]:
        async with chained_store(tmp_path) as store:
            stored = await store.record_updates(
                [
                    report(CHAIN[0], CommandState.IN_PROGRESS, end),
                    report(CHAIN[0], CommandState.SUCCEEDED),
                    dataclasses.replace(  # another instance's command: refused
                        report(CHAIN[1], CommandState.IN_PROGRESS, end), instance_name="web-2"
                    ),
                    report(CHAIN[1], CommandState.IN_PROGRESS, end),
                    report(CHAIN[1], CommandState.FAILED),
                ]
            )
            everything, _ = await store.updates_after(0)
            ends, cursor = await store.updates_after(0, finished_only=True)
        sequences = [u.sequence for u in stored if u is not None]
        assert sequences == sorted(sequences) == [u.sequence for u in everything]
        return (
            [None if u is None else u.kind for u in stored],
            [(u.command_id, u.state) for u in everything],
            [(u.command_id, u.state) for u in ends],
            cursor - ends[-1].sequence,
        )

    kinds, everything, ends, past_the_last = asyncio.run(scenario())
    assert kinds == [
        UpdateKind.STARTED,
        UpdateKind.FINISHED,
        None,
        UpdateKind.STARTED,
        UpdateKind.FINISHED,
    ]
    assert everything == [
        (CHAIN[0], CommandState.IN_PROGRESS),
        (CHAIN[0], CommandState.SUCCEEDED),
        (CHAIN[1], CommandState.IN_PROGRESS),
        (CHAIN[1], CommandState.FAILED),
    ]
    assert ends == [(CHAIN[0], CommandState.SUCCEEDED), (CHAIN[1], CommandState.FAILED)]
    assert past_the_last == 0
