"""What agents send about their commands — starts, ends and hook output — written many at a
time, in the order sent: which items a burst may apply (the transition table, the output
bounds), and the few statements, each executed for many rows, that write them. Part of the
fleet store (store.py), inside its transactions: a thousand agents report at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.fleet.domain import (
    COMMAND_TRANSITIONS,
    FINISHED_COMMAND,
    OUTPUT_LINES_PER_COMMAND,
    CommandState,
    CommandUpdate,
    Output,
    Report,
    UpdateKind,
)
from services.fleet.schema import CommandOutputRow, CommandRow, CommandUpdateRow


def new_update(sequence: int, report: Report, at: datetime) -> CommandUpdate:
    """The update a report was stored as."""
    return CommandUpdate(
        sequence,
        report.command_id,
        report.instance_name,
        report.kind,
        report.state,
        at,
        report.diagnostics,
    )


def applicable(
    items: Sequence[Report | Output],
    commands: dict[str, tuple[str, CommandState]],
    deployments: dict[str, str | None],
) -> list[Report | Output | None]:
    """Each report that moves its command (instance and state, by id) along the transition
    table, and each output of a deployment command of its instance not finished by then — in
    order (a later item of a burst sees the state an earlier report moved to); None for the
    others."""
    accepted: list[Report | Output | None] = []
    for item in items:
        instance, state = commands.get(item.command_id, ("", None))
        if state is None or instance != item.instance_name:
            accepted.append(None)
        elif isinstance(item, Output):
            unfinished = state not in FINISHED_COMMAND and deployments[item.command_id]
            accepted.append(item if unfinished else None)
        elif item.state in COMMAND_TRANSITIONS[state]:
            commands[item.command_id] = (instance, item.state)
            accepted.append(item)
        else:
            accepted.append(None)
    return accepted


async def append_updates(
    session: AsyncSession, reports: Sequence[Report], now: datetime
) -> dict[tuple[str, str], int]:
    """Move the reports' commands, hold the starting instances' next commands, and append the
    updates; each update's sequence by command and kind."""
    connection = await session.connection()
    await connection.execute(
        _MOVE_COMMAND,
        [{"command": r.command_id, "to": r.state, "deadline": r.deadline} for r in reports],
    )
    started = {
        r.instance_name: r.deadline
        for r in reports
        if r.kind is UpdateKind.STARTED and r.deadline is not None
    }
    await hold_until(session, started)
    sequences = await connection.execute(
        _APPEND_UPDATE,
        [
            {
                "command_id": r.command_id,
                "instance_name": r.instance_name,
                "kind": r.kind,
                "status": r.state,
                "diagnostics": r.diagnostics,
                "at": now,
            }
            for r in reports
        ],
    )
    return {(command, kind): sequence for sequence, command, kind in sequences}


async def append_output(
    session: AsyncSession,
    outputs: Sequence[Output],
    deployments: dict[str, str | None],
    now: datetime,
) -> list[int]:
    """Append the outputs' lines, each command's up to its bound (one statement for them all);
    how many lines of each output were kept."""
    if not outputs:
        return []
    counted = await session.execute(
        select(CommandOutputRow.command_id, func.count())
        .where(CommandOutputRow.command_id.in_({output.command_id for output in outputs}))
        .group_by(CommandOutputRow.command_id)
    )
    held: dict[str, int] = {command: count for command, count in counted}
    rows = []
    kept = []
    for output in outputs:
        room = max(OUTPUT_LINES_PER_COMMAND - held.get(output.command_id, 0), 0)
        lines = output.lines[:room]
        held[output.command_id] = held.get(output.command_id, 0) + len(lines)
        kept.append(len(lines))
        rows += [
            {
                "command_id": output.command_id,
                "deployment_id": deployments[output.command_id],
                "instance_name": output.instance_name,
                "stored_at": now,
                "written_at": line.time,
                "stream": line.stream,
                "script": line.script,
                "text": line.text,
            }
            for line in lines
        ]
    if rows:
        await (await session.connection()).execute(insert(CommandOutputRow), rows)
    return kept


async def hold_until(session: AsyncSession, deadlines: dict[str, datetime]) -> None:
    """Each instance's commands not yet started may wait until its deadline (not less than
    they may already): its agent holds them behind the one it runs. One statement executed
    for all the instances."""
    if deadlines:
        connection = await session.connection()
        await connection.execute(
            _HOLD_UNSTARTED,
            [{"instance": name, "deadline": deadline} for name, deadline in deadlines.items()],
        )


_MOVE_COMMAND = (
    update(CommandRow)
    .where(CommandRow.id == bindparam("command"))
    .values(state=bindparam("to"), deadline_at=bindparam("deadline"))
)
_HOLD_UNSTARTED = (
    update(CommandRow)
    .where(
        CommandRow.instance_name == bindparam("instance"),
        CommandRow.state == CommandState.PENDING,
        CommandRow.deadline_at < bindparam("deadline"),
    )
    .values(deadline_at=bindparam("deadline"))
)
"""Core statements (executed on the session's connection, for many rows at once)."""
_APPEND_UPDATE = insert(CommandUpdateRow).returning(
    CommandUpdateRow.sequence, CommandUpdateRow.command_id, CommandUpdateRow.kind
)
"""Rows are numbered in the order given (one multi-row INSERT); RETURNING's own order is not
promised, so each comes back with its key — a command is started and finished once at most."""
