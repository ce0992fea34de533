"""Persistence of instances, tags, commands and command updates (the fleet's tables only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from deploy.hookoutput import OutputLine, OutputStream
from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from services.core.tags import MAX_TAGS, Tag
from services.fleet.domain import (
    CommandState,
    CommandUpdate,
    Instance,
    NewCommand,
    Output,
    Report,
    Sighting,
    Stored,
    StoredOutput,
    UnfinishedCommand,
    UpdateKind,
)
from services.fleet.enrolment import JoinToken
from services.fleet.reports import append_output, append_updates, applicable, hold_until, new_update
from services.fleet.schema import (
    CommandOutputRow,
    CommandRow,
    CommandUpdateRow,
    InstanceRow,
    InstanceTagRow,
    JoinTokenRow,
)

UPDATE_BATCH = 500
T = TypeVar("T")


class FleetStore:
    """Reads and writes the fleet's tables; each public method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def register(
        self, name: str, tags: Sequence[Tag], token: JoinToken | None = None
    ) -> Instance:
        """Register a new instance (or re-register a deregistered one) with its tags, and the
        join token its agent enrols with."""
        async with self._db.transaction() as session:
            row = await self._register(session, name, tags)
            if token is not None:
                self._add_token(session, token)
            return await self._instance(session, row)

    async def add_join_token(self, token: JoinToken) -> None:
        async with self._db.transaction() as session:
            self._add_token(session, token)

    async def enrol(
        self, digest: str, name: str, now: datetime, issue: Callable[[str], Awaitable[T]]
    ) -> T:
        """Spend one use of a join token on enrolling an instance: a registration's token
        enrols its instance (still registered); a created one registers a new instance (`name`)
        with the token's tags. Returns what `issue` (the instance's certificate) gives for the
        instance's name — in the same transaction, so a failed issue spends nothing.
        Unauthenticated for an unknown, used-up or expired token."""
        async with self._db.transaction() as session:
            row = await session.get(JoinTokenRow, digest, with_for_update=True)
            expires = row.expires_at if row is not None else None
            if row is None or row.uses_left < 1 or expires is None or expires <= now:
                raise Unauthenticated("the join token is not valid (unknown, used up or expired)")
            if row.instance_name is not None:
                if name and name != row.instance_name:
                    raise PermissionDenied(f"the join token enrols {row.instance_name!r} only")
                name = row.instance_name
                await self._registered(session, name)
            elif not name:
                raise InvalidArgument("instanceName: this join token needs the name to enrol as")
            else:
                await self._register(session, name, row.tags)
            row.uses_left -= 1
            if row.uses_left == 0:
                await session.delete(row)
            return await issue(name)

    async def is_registered(self, name: str) -> bool:
        async with self._db.read() as session:
            row = await session.get(InstanceRow, name)
            return row is not None and row.deregistered_at is None

    async def _register(self, session: AsyncSession, name: str, tags: Sequence[Tag]) -> InstanceRow:
        row = await session.get(InstanceRow, name)
        if row is not None and row.deregistered_at is None:
            raise AlreadyExists(f"instance {name!r} is already registered")
        if row is None:
            row = InstanceRow(name=name, registered_at=utcnow())
            session.add(row)
        else:
            row.registered_at, row.deregistered_at = utcnow(), None
        await session.flush()
        await self._replace_tags(session, name, tags)
        return row

    @staticmethod
    def _add_token(session: AsyncSession, token: JoinToken) -> None:
        session.add(
            JoinTokenRow(
                token_hash=token.digest,
                instance_name=token.instance_name,
                tags=tuple(token.tags),
                uses_left=token.uses,
                expires_at=token.expires_at,
            )
        )

    async def register_if_unknown(self, name: str, tags: Sequence[Tag]) -> bool:
        """Register the instance with `tags` when the fleet has never seen it; True if it did."""
        async with self._db.transaction() as session:
            if await session.get(InstanceRow, name) is not None:
                return False
            session.add(InstanceRow(name=name, registered_at=utcnow()))
            await session.flush()
            await self._replace_tags(session, name, tags)
            return True

    async def deregister(self, name: str) -> None:
        """The instance gets no new commands and matches no group; its record stays."""
        async with self._db.transaction() as session:
            row = await self._registered(session, name)
            row.deregistered_at = utcnow()

    async def change_tags(
        self, names: Sequence[str], add: Sequence[Tag] = (), remove: Sequence[Tag] = ()
    ) -> None:
        """Add tags (replacing the value of a key already present) or remove matching ones, on
        every instance named — all or none (NotFound names an unregistered instance)."""
        async with self._db.transaction() as session:
            for name in names:
                await self._registered(session, name)
                current = {
                    t.key: t
                    for t in await session.scalars(
                        select(InstanceTagRow).where(InstanceTagRow.instance_name == name)
                    )
                }
                tags = {key: Tag(key, t.value) for key, t in current.items()}
                tags.update({t.key: t for t in add})
                for tag in remove:
                    if tags.get(tag.key) == tag:
                        del tags[tag.key]
                if len(tags) > MAX_TAGS:
                    raise InvalidArgument(
                        f"tags: instance {name!r} would have {len(tags)} tags; at most {MAX_TAGS}"
                    )
                await self._replace_tags(session, name, list(tags.values()))

    @staticmethod
    async def _registered(session: AsyncSession, name: str) -> InstanceRow:
        row = await session.get(InstanceRow, name, with_for_update=True)
        if row is None or row.deregistered_at is not None:
            raise NotFound(f"instance {name!r} is not registered")
        return row

    async def get(self, name: str) -> Instance:
        async with self._db.read() as session:
            row = await session.get(InstanceRow, name)
            if row is None:
                raise NotFound(f"instance {name!r} is not registered")
            return await self._instance(session, row)

    async def all(self) -> list[Instance]:
        async with self._db.read() as session:
            rows = await session.scalars(select(InstanceRow).order_by(InstanceRow.name))
            tags = await session.scalars(select(InstanceTagRow))
            by_name: dict[str, list[Tag]] = {}
            for tag in tags:
                by_name.setdefault(tag.instance_name, []).append(Tag(tag.key, tag.value))
            return [_instance(row, by_name.get(row.name, [])) for row in rows]

    async def registered_names(self) -> list[str]:
        async with self._db.read() as session:
            return list(
                await session.scalars(
                    select(InstanceRow.name).where(InstanceRow.deregistered_at.is_(None))
                )
            )

    async def mark_seen(self, sightings: Sequence[Sighting]) -> list[None]:
        """Record when each agent was last heard from, and the address it last connected
        from — one transaction for them all; a name the fleet does not know is left out."""
        last_seen = {s.name: s.at for s in sightings}
        address = {s.name: s.address for s in sightings if s.address}
        async with self._db.transaction() as session:
            known = set(
                await session.scalars(
                    select(InstanceRow.name).where(InstanceRow.name.in_(last_seen))
                )
            )
            rows = [
                {"name": name, "last_seen_at": at}
                | ({"address": address[name]} if name in address else {})
                for name, at in last_seen.items()
                if name in known
            ]
            for with_address in (True, False):  # one statement per set of columns
                group = [row for row in rows if ("address" in row) is with_address]
                if group:
                    await session.execute(update(InstanceRow), group)
        return [None] * len(sightings)

    async def add_commands(self, commands: Sequence[NewCommand]) -> list[Stored]:
        """Store commands, each to be acknowledged by its deadline — one transaction; for
        each, whether it was added, was known already (a repeated id: no change), or names an
        instance that is not registered (not stored)."""
        async with self._db.transaction() as session:
            names = {command.instance_name for command in commands}
            registered = set(
                await session.scalars(
                    select(InstanceRow.name).where(
                        InstanceRow.name.in_(names), InstanceRow.deregistered_at.is_(None)
                    )
                )
            )
            ids = {command.id for command in commands}
            known = set(await session.scalars(select(CommandRow.id).where(CommandRow.id.in_(ids))))
            results = []
            rows: list[dict[str, object]] = []
            now = utcnow()
            for command in commands:
                if command.instance_name not in registered:
                    results.append(Stored.UNREGISTERED)
                    continue
                if command.id in known:
                    results.append(Stored.KNOWN)
                    continue
                known.add(command.id)
                rows.append(
                    {
                        "id": command.id,
                        "instance_name": command.instance_name,
                        "payload": command.payload,
                        "deployment_id": command.deployment_id,
                        "state": CommandState.PENDING,
                        # a microsecond apart: a reconnecting agent gets them in this order
                        # (the commands of a chain, stored together, first to last)
                        "created_at": now + timedelta(microseconds=len(rows)),
                        "deadline_at": command.deadline,
                    }
                )
                results.append(Stored.ADDED)
            if rows:
                await (await session.connection()).execute(insert(CommandRow), rows)
            return results

    async def pending_commands(self, instance_name: str) -> list[bytes]:
        """Payloads of the instance's commands that its agent has not started, oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(CommandRow.payload)
                .where(
                    CommandRow.instance_name == instance_name,
                    CommandRow.state == CommandState.PENDING,
                )
                .order_by(CommandRow.created_at)
            )
            return list(rows)

    async def record_updates(
        self, items: Sequence[Report | Output]
    ) -> list[CommandUpdate | int | None]:
        """Store what agents sent about their commands, in the order sent — one transaction
        for them all. A report moves its command to its state (with its next deadline, None
        once finished) and is appended as an update; None for a report that is not a valid
        move (a duplicate after a reconnect, or a command of another instance). A start also
        lets the instance's commands not yet started wait as long as the started one may run:
        its agent holds them behind it (the rest of a chain), as it would say of each with
        CommandQueued. Hook output is kept for an unfinished deployment command of the sending
        instance, up to OUTPUT_LINES_PER_COMMAND lines per command; how many lines were kept.

        A burst of a thousand agents' reports is a few statements, each executed for many
        rows (Core, not ORM objects: this is the fleet's hottest write)."""
        async with self._db.transaction() as session:
            found = (
                await session.execute(
                    select(
                        CommandRow.id,
                        CommandRow.instance_name,
                        CommandRow.state,
                        CommandRow.deployment_id,
                    )
                    .where(CommandRow.id.in_({item.command_id for item in items}))
                    .with_for_update()
                )
            ).all()
            deployments = {id_: deployment for id_, _, _, deployment in found}
            accepted = applicable(
                items, {id_: (name, CommandState(st)) for id_, name, st, _ in found}, deployments
            )
            now = utcnow()
            reports = [item for item in accepted if isinstance(item, Report)]
            numbered = await append_updates(session, reports, now) if reports else {}
            outputs = [item for item in accepted if isinstance(item, Output)]
            kept = iter(await append_output(session, outputs, deployments, now))
            results: list[CommandUpdate | int | None] = []
            for item, taken in zip(items, accepted, strict=True):
                if isinstance(item, Output):
                    results.append(next(kept) if taken else 0)
                elif isinstance(taken, Report):
                    results.append(new_update(numbered[item.command_id, item.kind], item, now))
                else:
                    results.append(None)
            return results

    async def extend(self, instance_name: str, command_id: str, deadline: datetime) -> bool:
        """A not yet started command of the instance waits until `deadline`, and so do those
        its agent holds behind it (the rest of its chain); False if there is none such."""
        async with self._db.transaction() as session:
            command = await session.get(CommandRow, command_id, with_for_update=True)
            if (
                command is None
                or command.instance_name != instance_name
                or command.state != CommandState.PENDING
            ):
                return False
            command.deadline_at = deadline
            await hold_until(session, {instance_name: deadline})
            return True

    async def cancel(
        self, command_ids: Sequence[str], deadline: datetime
    ) -> list[UnfinishedCommand]:
        """Bring forward the deadline of each unfinished command named to `deadline`; returns
        them (finished and unknown ids are left alone)."""
        async with self._db.transaction() as session:
            rows = await session.scalars(
                select(CommandRow)
                .where(CommandRow.id.in_(command_ids), CommandRow.deadline_at.is_not(None))
                .with_for_update()
            )
            found = []
            for row in rows:
                current = row.deadline_at
                row.deadline_at = deadline if current is None else min(current, deadline)
                found.append(_unfinished(row))
            return found

    async def next_deadline(self) -> datetime | None:
        """The earliest deadline of an unfinished command."""
        async with self._db.read() as session:
            return await session.scalar(select(func.min(CommandRow.deadline_at)))

    async def overdue(self, now: datetime) -> list[UnfinishedCommand]:
        """Unfinished commands whose deadline has passed, oldest deadline first."""
        async with self._db.read() as session:
            rows = await session.scalars(
                select(CommandRow)
                .where(CommandRow.deadline_at <= now)
                .order_by(CommandRow.deadline_at)
                .limit(UPDATE_BATCH)
            )
            return [_unfinished(row) for row in rows]

    async def unfinished(self, instance_name: str = "") -> list[UnfinishedCommand]:
        """Unfinished commands of the instance (of every instance when not named)."""
        query = select(CommandRow).where(CommandRow.deadline_at.is_not(None))
        if instance_name:
            query = query.where(CommandRow.instance_name == instance_name)
        async with self._db.read() as session:
            return [_unfinished(row) for row in await session.scalars(query)]

    async def last_sequence(self) -> int:
        """The sequence of the last update stored (0 before the first)."""
        async with self._db.read() as session:
            return await session.scalar(select(func.max(CommandUpdateRow.sequence))) or 0

    async def updates_after(
        self, sequence: int, finished_only: bool = False
    ) -> tuple[list[CommandUpdate], int]:
        """The next updates after `sequence` (at most UPDATE_BATCH; `finished_only`: of
        commands that finished), and the sequence to read on from. Plain rows: every update
        is read once by the orchestrator's stream."""
        query = select(
            CommandUpdateRow.sequence,
            CommandUpdateRow.command_id,
            CommandUpdateRow.instance_name,
            CommandUpdateRow.kind,
            CommandUpdateRow.status,
            CommandUpdateRow.at,
            CommandUpdateRow.diagnostics,
        ).where(CommandUpdateRow.sequence > sequence)
        if finished_only:
            query = query.where(CommandUpdateRow.kind == UpdateKind.FINISHED)
        async with self._db.read() as session:
            rows = (
                await session.execute(query.order_by(CommandUpdateRow.sequence).limit(UPDATE_BATCH))
            ).all()
        updates = [
            CommandUpdate(
                sequence=row.sequence,
                command_id=row.command_id,
                instance_name=row.instance_name,
                kind=UpdateKind(row.kind),
                state=CommandState(row.status),
                at=row.at,
                diagnostics=row.diagnostics,
            )
            for row in rows
        ]
        return updates, updates[-1].sequence if updates else sequence

    async def output_after(
        self, deployment_id: str, instance_name: str | None, sequence: int, limit: int
    ) -> list[StoredOutput]:
        """The deployment's hook output (of one instance, when named) stored after `sequence`,
        in order, at most `limit` lines."""
        query = select(CommandOutputRow).where(
            CommandOutputRow.deployment_id == deployment_id, CommandOutputRow.sequence > sequence
        )
        if instance_name is not None:
            query = query.where(CommandOutputRow.instance_name == instance_name)
        async with self._db.read() as session:
            rows = await session.scalars(query.order_by(CommandOutputRow.sequence).limit(limit))
            return [_output(row) for row in rows]

    async def prune_output(self, before: datetime) -> int:
        """Forget hook output stored before `before`; how many lines."""
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(CommandOutputRow).where(CommandOutputRow.stored_at < before)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    async def _replace_tags(session: AsyncSession, name: str, tags: Sequence[Tag]) -> None:
        await session.execute(delete(InstanceTagRow).where(InstanceTagRow.instance_name == name))
        for tag in {t.key: t for t in tags}.values():
            session.add(InstanceTagRow(instance_name=name, key=tag.key, value=tag.value))

    @staticmethod
    async def _instance(session: AsyncSession, row: InstanceRow) -> Instance:
        tags = await session.scalars(
            select(InstanceTagRow).where(InstanceTagRow.instance_name == row.name)
        )
        return _instance(row, [Tag(t.key, t.value) for t in tags])


def _instance(row: InstanceRow, tags: Sequence[Tag]) -> Instance:
    return Instance(
        name=row.name,
        tags=tuple(sorted(tags, key=lambda t: t.key)),
        registered_at=row.registered_at,
        deregistered_at=row.deregistered_at,
        last_seen_at=row.last_seen_at,
        address=row.address or "",
    )


def _unfinished(row: CommandRow) -> UnfinishedCommand:
    return UnfinishedCommand(row.id, row.instance_name, CommandState(row.state))


def _output(row: CommandOutputRow) -> StoredOutput:
    return StoredOutput(
        sequence=row.sequence,
        command_id=row.command_id,
        line=OutputLine(
            time=row.written_at.replace(tzinfo=row.written_at.tzinfo or UTC),
            stream=OutputStream(row.stream),
            script=row.script,
            text=row.text,
        ),
    )
