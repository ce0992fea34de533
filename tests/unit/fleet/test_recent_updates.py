"""Caught-up watchers of command updates read on from memory: every update after the floor,
once, in order — and the database whenever memory may not hold them all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.db import open_database
from services.core.diagnostics import Diagnostics
from services.fleet.commands import CommandBus
from services.fleet.domain import (
    CommandState,
    CommandUpdate,
    DeadlinePolicy,
    NewCommand,
    Report,
    UpdateKind,
)
from services.fleet.recent import RecentUpdates
from services.fleet.sessions import SessionRegistry
from services.fleet.store import FleetStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def update(sequence: int, kind: UpdateKind = UpdateKind.FINISHED) -> CommandUpdate:
    state = CommandState.SUCCEEDED if kind is UpdateKind.FINISHED else CommandState.IN_PROGRESS
    return CommandUpdate(sequence, f"c-{sequence}", "web-1", kind, state, T0)


def sequences(updates: list[CommandUpdate] | None) -> list[int] | None:
    return None if updates is None else [u.sequence for u in updates]


def test_nothing_is_served_from_memory_until_the_floor_is_known() -> None:
    recent = RecentUpdates()
    recent.add([update(1), update(2)])
    assert recent.after(0, finished_only=False, limit=10) is None
    recent.cover_from(0)
    assert sequences(recent.after(0, finished_only=False, limit=10)) == [1, 2]


def test_a_cursor_below_the_floor_reads_the_database() -> None:
    recent = RecentUpdates()
    recent.cover_from(10)
    recent.add([update(11), update(12)])
    assert recent.after(9, finished_only=False, limit=10) is None
    assert sequences(recent.after(10, finished_only=False, limit=10)) == [11, 12]
    assert sequences(recent.after(12, finished_only=False, limit=10)) == []


def test_updates_come_in_sequence_order_within_the_limit_and_only_ends_when_asked() -> None:
    recent = RecentUpdates()
    recent.cover_from(0)
    recent.add([update(3), update(1, UpdateKind.STARTED), update(2)])
    recent.add([update(4, UpdateKind.STARTED), update(5)])
    assert sequences(recent.after(0, finished_only=False, limit=10)) == [1, 2, 3, 4, 5]
    assert sequences(recent.after(0, finished_only=False, limit=2)) == [1, 2]
    assert sequences(recent.after(0, finished_only=True, limit=10)) == [2, 3, 5]
    assert sequences(recent.after(3, finished_only=True, limit=10)) == [5]


def test_dropping_the_oldest_raises_the_floor_so_a_watcher_behind_them_reads_the_database() -> None:
    recent = RecentUpdates(capacity=4)
    recent.cover_from(0)
    recent.add([update(n) for n in range(1, 6)])  # 5 > 4: keeps the newest 2
    assert recent.after(2, finished_only=False, limit=10) is None
    assert sequences(recent.after(3, finished_only=False, limit=10)) == [4, 5]


@contextlib.asynccontextmanager
async def bus_on(tmp_path: Path) -> AsyncIterator[tuple[CommandBus, FleetStore]]:
    """A command bus on a fleet store with 20 commands of web-1, the first 5 finished before
    the bus started (stored by an earlier process)."""
    db = await open_database(f"sqlite:///{tmp_path / 'fleet.db'}", "fleet")
    store = FleetStore(db)
    await store.register("web-1", [])
    deadline = T0 + timedelta(minutes=5)
    await store.add_commands(
        [NewCommand(f"c-{n}", "web-1", b"{}", deadline, "d-1") for n in range(20)]
    )
    await store.record_updates(
        [
            Report("web-1", f"c-{n}", UpdateKind.FINISHED, CommandState.SUCCEEDED, Diagnostics())
            for n in range(5)
        ]
    )
    policy = DeadlinePolicy(ack_seconds=60, grace_seconds=30, cancel_seconds=10)
    bus = CommandBus(store, SessionRegistry(), policy)
    await bus.start()
    try:
        yield bus, store
    finally:
        bus.close()
        await bus.stopped()
        await db.close()


async def test_a_watcher_from_the_start_gets_the_stored_updates_then_the_new_ones_once_each(
    tmp_path: Path,
) -> None:
    async with bus_on(tmp_path) as (bus, _):
        for n in range(5, 20):
            await bus.report(
                "web-1", f"c-{n}", UpdateKind.FINISHED, CommandState.SUCCEEDED, Diagnostics()
            )
        seen: list[str] = []
        watch = bus.watch(0, finished_only=True)
        async with asyncio.timeout(10):
            while len(seen) < 20:
                seen.append((await anext(watch)).command_id)
        await watch.aclose()
        assert seen == [f"c-{n}" for n in range(20)]


async def test_a_caught_up_watcher_is_told_of_each_new_end_as_it_is_stored(
    tmp_path: Path,
) -> None:
    async with bus_on(tmp_path) as (bus, store):
        last = await store.last_sequence()
        watch = bus.watch(last, finished_only=True)
        async with asyncio.timeout(10):
            for n in range(5, 8):
                pending = asyncio.ensure_future(anext(watch))
                await bus.report(
                    "web-1", f"c-{n}", UpdateKind.STARTED, CommandState.IN_PROGRESS, Diagnostics()
                )
                await bus.report(
                    "web-1", f"c-{n}", UpdateKind.FINISHED, CommandState.FAILED, Diagnostics()
                )
                got = await pending
                assert (got.command_id, got.state) == (f"c-{n}", CommandState.FAILED)
                assert got.sequence > last
                last = got.sequence
        await watch.aclose()
