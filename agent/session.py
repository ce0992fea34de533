"""The agent's stream to the fleet: hello, heartbeats, commands down, results up; reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agent.config import AgentConfig
from agent.download import BundleCache, RevisionSource
from agent.errors import ErrorCode, EventFailed
from agent.events import EventRunner
from agent.layout import DeploymentRoot
from deploy.backoff import Backoff
from deploy.private import private_dir
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
REPORTS_KEPT = 100
"""Finished reports re-sent after a reconnect (the fleet ignores ones it already has)."""
SEEN_KEPT = 10_000
"""Command ids remembered so a re-sent command is never run twice; the oldest are forgotten
(a command that old is long finished on the server)."""
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]

_ERROR_CODES = {
    ErrorCode.SCRIPT_MISSING: common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_MISSING,
    ErrorCode.SCRIPT_NOT_EXECUTABLE: common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_NOT_EXECUTABLE,
    ErrorCode.SCRIPT_TIMED_OUT: common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_TIMED_OUT,
    ErrorCode.SCRIPT_FAILED: common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_FAILED,
    ErrorCode.UNKNOWN_ERROR: common_pb2.LIFECYCLE_ERROR_CODE_UNKNOWN_ERROR,
    ErrorCode.INVALID_BUNDLE: common_pb2.LIFECYCLE_ERROR_CODE_INVALID_BUNDLE,
    ErrorCode.INVALID_APPSPEC: common_pb2.LIFECYCLE_ERROR_CODE_INVALID_APPSPEC,
    ErrorCode.INSTALL_FAILED: common_pb2.LIFECYCLE_ERROR_CODE_INSTALL_FAILED,
}


def failed(command_id: str, error: EventFailed) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id,
            status=common_pb2.LIFECYCLE_EVENT_STATUS_FAILED,
            diagnostics=common_pb2.Diagnostics(
                error_code=_ERROR_CODES[error.code],
                script_name=error.script_name,
                message=error.message,
                log_tail=error.log_tail,
            ),
        )
    )


def succeeded(command_id: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id,
            status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
            diagnostics=common_pb2.Diagnostics(
                error_code=common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS, message="Succeeded"
            ),
        )
    )


class CommandTracker:
    """A file per running command, so a restarted agent reports it Failed, never re-runs it."""

    def __init__(self, directory: Path) -> None:
        self._dir = private_dir(directory)

    def _path(self, command_id: str) -> Path:
        return self._dir / re.sub(r"[^A-Za-z0-9._-]", "_", command_id)

    def begin(self, command_id: str) -> None:
        self._path(command_id).write_text(command_id)

    def end(self, command_id: str) -> None:
        self._path(command_id).unlink(missing_ok=True)

    def interrupted(self) -> list[str]:
        """Commands that were running when the agent last stopped; forgets them."""
        ids = []
        for path in self._dir.iterdir():
            ids.append(path.read_text())
            path.unlink()
        return ids


class SeenCommands:
    """The newest `limit` command ids received, oldest forgotten first."""

    def __init__(self, limit: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, command_id: str) -> None:
        self._ids[command_id] = None
        self._ids.move_to_end(command_id)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)


class AgentSession:
    """Keeps one stream open to the fleet and runs the commands it receives, one at a time."""

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._channel = grpc.aio.insecure_channel(config.server, options=CHANNEL_OPTIONS)
        root = DeploymentRoot(private_dir(config.root_dir))
        self._runner = EventRunner(
            config,
            RevisionSource(
                self._channel,
                BundleCache(root.bundle_cache, config.max_revisions),
                root.git_cache,
                config.fetch,
            ),
        )
        self._tracker = CommandTracker(config.root_dir / "ongoing-deployment")
        self._reports: deque[agent_pb2.ConnectRequest] = deque(maxlen=REPORTS_KEPT)
        self._outbox: asyncio.Queue[agent_pb2.ConnectRequest] | None = None
        self._seen: SeenCommands = SeenCommands(SEEN_KEPT)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat_seconds = 5.0
        self.connected = asyncio.Event()
        for command_id in self._tracker.interrupted():
            # Reported Failed, never run again — not even when the fleet, which may not have
            # heard it started, sends it again on reconnect before it reads this report.
            self._seen.add(command_id)
            self._reports.append(
                failed(
                    command_id,
                    EventFailed(
                        ErrorCode.UNKNOWN_ERROR,
                        "Failed: Failing in-progress lifecycle event after an agent restart.",
                    ),
                )
            )

    async def run_forever(self) -> None:
        backoff = Backoff()  # jittered: a restarted fleet is not met by every agent at once
        while True:
            try:
                await self._run_stream()
                backoff.reset()
            except grpc.RpcError as error:
                log.warning(
                    "stream to the fleet ended; reconnecting",
                    extra={
                        "fields": {
                            "server": self._config.server,
                            "code": str(error.code()),
                            "details": error.details(),
                            "instance": self._config.instance_name,
                        }
                    },
                )
            self.connected.clear()
            await asyncio.sleep(backoff.next_delay() or backoff.maximum)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._channel.close()

    async def _run_stream(self) -> None:
        outbox: asyncio.Queue[agent_pb2.ConnectRequest] = asyncio.Queue()
        hello = agent_pb2.AgentHello(
            instance_name=self._config.instance_name,
            agent_version=AGENT_VERSION,
            tags=[common_pb2.Tag(key=k, value=v) for k, v in self._config.tags.items()],
        )
        outbox.put_nowait(agent_pb2.ConnectRequest(hello=hello))
        for report in self._reports:
            outbox.put_nowait(report)
        self._outbox = outbox
        stub = agent_pb2_grpc.AgentGatewayStub(self._channel)
        call = stub.Connect(self._drain(outbox))
        heartbeat = asyncio.create_task(self._heartbeats(outbox))
        try:
            async for message in call:
                self._receive(message)
        finally:
            self._outbox = None
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    @staticmethod
    async def _drain(
        outbox: asyncio.Queue[agent_pb2.ConnectRequest],
    ) -> AsyncIterator[agent_pb2.ConnectRequest]:
        while True:
            yield await outbox.get()

    async def _heartbeats(self, outbox: asyncio.Queue[agent_pb2.ConnectRequest]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            stamp = Timestamp()
            stamp.GetCurrentTime()
            outbox.put_nowait(
                agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat(sent_at=stamp))
            )

    def _receive(self, message: agent_pb2.ConnectResponse) -> None:
        kind = message.WhichOneof("body")
        if kind == "welcome":
            self._heartbeat_seconds = float(message.welcome.heartbeat_interval_seconds or 5)
            self.connected.set()
            log.info(
                "connected to the fleet",
                extra={
                    "fields": {
                        "server": self._config.server,
                        "instance": self._config.instance_name,
                    }
                },
            )
        elif kind == "command":
            command = message.command
            if command.command_id in self._seen:
                return
            self._seen.add(command.command_id)
            task = asyncio.create_task(self._execute(command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _send(self, message: agent_pb2.ConnectRequest) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    async def _execute(self, command: agent_pb2.LifecycleCommand) -> None:
        async with self._lock:
            command_id = command.command_id
            self._tracker.begin(command_id)
            self._send(
                agent_pb2.ConnectRequest(started=agent_pb2.CommandStarted(command_id=command_id))
            )
            fields = {
                "deployment_id": command.spec.deployment_id,
                "instance": self._config.instance_name,
                "event": command.lifecycle_event,
                "command_id": command_id,
            }
            log.info("lifecycle event started", extra={"fields": fields})
            try:
                await self._runner.run(command)
                report = succeeded(command_id)
            except EventFailed as error:
                report = failed(command_id, error)
                log.warning(
                    "lifecycle event failed", extra={"fields": {**fields, "error": error.message}}
                )
            except OSError as error:
                report = failed(command_id, EventFailed(ErrorCode.UNKNOWN_ERROR, str(error)))
            self._tracker.end(command_id)
            self._reports.append(report)
            self._send(report)
