"""AgentGateway: the one bidirectional stream each agent holds with the fleet."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from grpc import aio

from deploy.hookoutput import line_from_proto
from deploy.v1 import agent_pb2, agent_pb2_grpc
from services.core.access import calling_instance
from services.core.batching import Batcher
from services.core.clock import utcnow
from services.core.convert import diagnostics_from_proto, tag_from_proto
from services.core.diagnostics import Diagnostics
from services.core.errors import InvalidArgument, PermissionDenied
from services.core.names import check_instance_name
from services.core.tags import check_tags
from services.fleet.changes import InstanceChanges
from services.fleet.commands import WRITE_BATCH, CommandBus
from services.fleet.convert import command_message, finished_state
from services.fleet.domain import OUTPUT_LINES_PER_MESSAGE, CommandState, Sighting, UpdateKind
from services.fleet.health import FleetHealth
from services.fleet.output import HookOutput
from services.fleet.sessions import AgentSession, SessionRegistry
from services.fleet.store import FleetStore

log = logging.getLogger(__name__)
Context: TypeAlias = aio.ServicerContext[Any, Any]
Report: TypeAlias = agent_pb2.ConnectRequest | agent_pb2.AgentReport
"""A report sent alone, or one of several sent together (their bodies' fields share names)."""
REPORT_KINDS = ("started", "finished", "output")


REPORTS_IN_FLIGHT = 32
"""Reports of one agent being written at once at most: beyond, its stream is read no further
until one is written (an agent flooding reports is slowed, not buffered)."""


class AgentGatewayServicer(agent_pb2_grpc.AgentGatewayServicer):
    def __init__(
        self,
        store: FleetStore,
        sessions: SessionRegistry,
        bus: CommandBus,
        health: FleetHealth,
        changes: InstanceChanges,
        output: HookOutput,
    ) -> None:
        self._output = output
        self._closing = False
        self._changes = changes
        self._store = store
        self._sessions = sessions
        self._bus = bus
        self._health = health
        self._sightings = Batcher(store.mark_seen, WRITE_BATCH)
        """Connections and disconnections are recorded together: a fleet restart is a
        thousand agents connecting at once, one transaction rather than a thousand."""

    async def Connect(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest], context: Context
    ) -> AsyncIterator[agent_pb2.ConnectResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("hello"):
            raise InvalidArgument("hello: an agent stream must start with AgentHello")
        name = await self._instance(first.hello)
        session = self._sessions.open(name)
        await self._sightings.submit(Sighting(name, utcnow(), peer_host(context.peer())))
        self._changes.publish(name)  # new, or back online: a replacement fleet may be complete
        log.info("agent connected", extra={"fields": {"instance": name}})
        reader = asyncio.create_task(self._read(request_iterator, session))
        try:
            yield agent_pb2.ConnectResponse(
                welcome=agent_pb2.Welcome(
                    instance_name=name,
                    heartbeat_interval_seconds=session.heartbeat_seconds,
                    reports_together=True,
                )
            )
            for payload in await self._store.pending_commands(name):
                yield command_message(payload)
            while (queued := await self._next(session)) is not None:
                yield queued
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if self._sessions.close(session) and not self._closing:
                self._bus.watch_offline(name)
                await self._sightings.submit(Sighting(name, utcnow()))
            log.info("agent disconnected", extra={"fields": {"instance": name}})

    async def _instance(self, hello: agent_pb2.AgentHello) -> str:
        """Who is connecting. With authentication on, the instance its certificate names —
        which must be registered, and is the one the hello names, if it names one (its tags
        were given when it was registered); otherwise the hello's, registered with its tags on
        first contact. Tags out of bounds are refused either way."""
        tags = check_tags("hello.tags", [tag_from_proto(t) for t in hello.tags])
        proved = calling_instance()
        if proved is None:
            name = check_instance_name("hello.instanceName", hello.instance_name)
            if await self._store.register_if_unknown(name, tags):
                self._health.registered(name)
            return name
        if hello.instance_name and hello.instance_name != proved:
            raise PermissionDenied(
                f"this certificate names instance {proved!r}, not {hello.instance_name[:100]!r}"
            )
        if not await self._store.is_registered(proved):
            raise PermissionDenied(f"instance {proved!r} is not registered")
        return proved

    def close(self) -> None:
        """End every agent stream (at shutdown), recording nothing more about them: the
        process is going, and the next one counts every agent's silence from its own start."""
        self._closing = True
        self._sessions.close_all()

    async def _next(self, session: AgentSession) -> agent_pb2.ConnectResponse | None:
        """The next message to push; None ends the stream — when it is closed, or when the
        agent has sent nothing (not even a heartbeat) for the offline window."""
        window = self._sessions.heartbeats.window(session.heartbeat_seconds)
        while True:
            try:
                async with asyncio.timeout(window):
                    return await session.outbox.get()
            except TimeoutError:
                if self._sessions.is_offline(session.instance_name):
                    log.warning(
                        "agent silent; closing its stream",
                        extra={"fields": {"instance": session.instance_name}},
                    )
                    return None

    async def _read(
        self, request_iterator: AsyncIterator[agent_pb2.ConnectRequest], session: AgentSession
    ) -> None:
        """Apply what the agent sends until its side of the stream ends, then end ours.

        Starts and ends of commands, and hook output, are not waited for one by one: an agent
        running a chain reports one event's output and end and the next one's start back to
        back (or all together, in one AgentReports, each applied as if sent alone), and those
        that arrive while a write is under way go into the next one together (the reports'
        writer keeps their order, so output is never stored after its command's end). A failed
        write ends the stream: the agent re-sends its reports when it connects again. Anything
        else it sends but heartbeats (its sync, queued commands) is applied once the reports
        before it are written."""
        reporting: set[asyncio.Task[None]] = set()
        try:
            async for message in request_iterator:
                kind = message.WhichOneof("body")
                if kind in REPORT_KINDS:
                    await self._take_report(session, message, reporting)
                    continue
                if kind == "reports":
                    for report in message.reports.reports:
                        await self._take_report(session, report, reporting)
                    continue
                if kind != "heartbeat" and reporting:
                    await asyncio.wait(list(reporting))
                await self._apply(session, message)
        finally:
            session.close()

    async def _take_report(
        self, session: AgentSession, report: Report, reporting: set[asyncio.Task[None]]
    ) -> None:
        """Start writing a report without waiting for it to be written — once fewer than
        REPORTS_IN_FLIGHT of the agent's are (back-pressure on a flood)."""
        if len(reporting) >= REPORTS_IN_FLIGHT:
            await asyncio.wait(list(reporting), return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.ensure_future(self._apply_report(session, report))
        reporting.add(task)
        task.add_done_callback(functools.partial(_reported, session, reporting))

    async def _apply(self, session: AgentSession, message: agent_pb2.ConnectRequest) -> None:
        """Anything but a report: a heartbeat, the agent's sync, a command it queued."""
        kind = message.WhichOneof("body")
        session.last_heartbeat = time.monotonic()
        if kind == "sync":
            await self._bus.reconcile(session.instance_name, list(message.sync.command_ids))
        elif kind == "queued":
            await self._bus.queued(session.instance_name, message.queued.command_id)

    async def _apply_report(self, session: AgentSession, message: Report) -> None:
        """A command's start, output or end, sent alone or with others (one with no body,
        as an agent newer than this fleet might send, is only a sign of life)."""
        name = session.instance_name
        kind = message.WhichOneof("body")
        session.last_heartbeat = time.monotonic()
        if kind == "started":
            await self._bus.report(
                name,
                message.started.command_id,
                UpdateKind.STARTED,
                CommandState.IN_PROGRESS,
                Diagnostics(),
                message.started.timeout_seconds,
            )
        elif kind == "output":
            lines = message.output.lines[:OUTPUT_LINES_PER_MESSAGE]
            if await self._bus.output(
                name, message.output.command_id, [line_from_proto(line) for line in lines]
            ):
                self._output.stored()
        elif kind == "finished":
            state = finished_state(message.finished.status)
            if state is None:
                log.warning(
                    "agent sent a non-terminal finish", extra={"fields": {"instance": name}}
                )
                return
            await self._bus.report(
                name,
                message.finished.command_id,
                UpdateKind.FINISHED,
                state,
                diagnostics_from_proto(message.finished.diagnostics),
            )


def _reported(
    session: AgentSession, reporting: set[asyncio.Task[None]], task: asyncio.Task[None]
) -> None:
    reporting.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning(
            "could not record an agent's report; ending its stream (it re-sends on reconnect)",
            extra={"fields": {"instance": session.instance_name, "error": str(task.exception())}},
        )
        session.close()


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string ("ipv4:10.0.0.5:51234", "ipv6:[::1]:51234"); "" for
    other transports (unix sockets)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return ""
    host = rest.rpartition(":")[0]
    return host.strip("[]")
