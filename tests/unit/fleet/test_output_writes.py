"""Hook output is written by the reports' writer, in the order the agent sent it: with the
reports of the same burst, never after its command's end, and within its bounds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.hookoutput import OutputLine, OutputStream
from services.core.db import open_database
from services.core.diagnostics import Diagnostics
from services.fleet.domain import (
    OUTPUT_LINES_PER_COMMAND,
    CommandState,
    CommandUpdate,
    NewCommand,
    Output,
    Report,
    UpdateKind,
)
from services.fleet.store import FleetStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FIRST = "d-1:web-1:0:BeforeInstall"
SECOND = "d-1:web-1:1:AfterInstall"


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path) -> AsyncIterator[FleetStore]:
    """Two commands of deployment d-1 for web-1 (web-2 is registered too), and a command of
    no deployment."""
    db = await open_database(f"sqlite:///{tmp_path / 'fleet.db'}", "fleet")
    store = FleetStore(db)
    await store.register("web-1", [])
    await store.register("web-2", [])
    deadline = T0 + timedelta(minutes=5)
    await store.add_commands(
        [
            NewCommand(FIRST, "web-1", b"1", deadline, "d-1"),
            NewCommand(SECOND, "web-1", b"2", deadline, "d-1"),
            NewCommand("probe", "web-1", b"3", deadline),
        ]
    )
    try:
        yield store
    finally:
        await db.close()


def started(command_id: str) -> Report:
    return Report(
        "web-1",
        command_id,
        UpdateKind.STARTED,
        CommandState.IN_PROGRESS,
        Diagnostics(),
        T0 + timedelta(hours=1),
    )


def finished(command_id: str) -> Report:
    return Report("web-1", command_id, UpdateKind.FINISHED, CommandState.SUCCEEDED, Diagnostics())


def output(command_id: str, *texts: str, instance: str = "web-1") -> Output:
    return Output(
        instance,
        command_id,
        tuple(OutputLine(T0, OutputStream.STDOUT, "scripts/run.sh", text) for text in texts),
    )


async def stored_texts(store: FleetStore) -> list[str]:
    return [stored.line.text for stored in await store.output_after("d-1", None, 0, 5000)]


def test_output_between_reports_of_one_burst_is_kept_in_order(tmp_path: Path) -> None:
    """An agent's chain in one write: the first event's start, its output and end, the next
    one's start and output; the results say what each item became."""

    async def scenario() -> tuple[list[CommandUpdate | int | None], list[str]]:
        async with fleet(tmp_path) as store:
            results = await store.record_updates(
                [
                    started(FIRST),
                    output(FIRST, "one", "two"),
                    finished(FIRST),
                    started(SECOND),
                    output(SECOND, "three"),
                ]
            )
            return results, await stored_texts(store)

    results, texts = asyncio.run(scenario())
    assert texts == ["one", "two", "three"]
    assert [r if isinstance(r, int) else type(r) for r in results] == [
        CommandUpdate,
        2,
        CommandUpdate,
        CommandUpdate,
        1,
    ]


def test_output_sent_after_its_command_ended_is_refused_even_in_the_same_burst(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[CommandUpdate | int | None], list[str]]:
        async with fleet(tmp_path) as store:
            results = await store.record_updates(
                [started(FIRST), finished(FIRST), output(FIRST, "late")]
            )
            return results, await stored_texts(store)

    results, texts = asyncio.run(scenario())
    assert results[2] == 0
    assert texts == []


def test_output_of_another_instance_an_unknown_or_a_non_deployment_command_is_refused(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[CommandUpdate | int | None], list[str]]:
        async with fleet(tmp_path) as store:
            await store.record_updates([started(FIRST), started("probe")])
            results = await store.record_updates(
                [
                    output(FIRST, "not mine", instance="web-2"),
                    output("d-1:web-1:9:Nothing", "unknown"),
                    output("probe", "no deployment"),
                    output(FIRST, "mine"),
                ]
            )
            return results, await stored_texts(store)

    results, texts = asyncio.run(scenario())
    assert results == [0, 0, 0, 1]
    assert texts == ["mine"]


def test_a_command_keeps_its_bound_of_lines_across_messages_and_bursts(tmp_path: Path) -> None:
    """The bound counts what earlier writes kept and what earlier items of the same burst
    take."""
    chunk = [f"line {i}" for i in range(100)]
    messages = OUTPUT_LINES_PER_COMMAND // 100 - 1

    async def scenario() -> tuple[list[CommandUpdate | int | None], int]:
        async with fleet(tmp_path) as store:
            await store.record_updates([started(FIRST)])
            await store.record_updates([output(FIRST, *chunk) for _ in range(messages)])
            results = await store.record_updates(
                [output(FIRST, *chunk), output(FIRST, *chunk), output(FIRST, "beyond")]
            )
            return results, len(await stored_texts(store))

    results, count = asyncio.run(scenario())
    assert results == [100, OUTPUT_LINES_PER_COMMAND - (messages + 1) * 100, 0]
    assert count == OUTPUT_LINES_PER_COMMAND
