"""The agent's stream to the fleet: hello, heartbeats, commands down, results up; reconnects."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import OrderedDict, deque

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from agent.config import AgentConfig
from agent.convert import command_from_proto
from agent.download import BundleCache, RevisionSource
from agent.errors import ErrorCode, EventFailed
from agent.events import EventRunner
from agent.hooks import TAIL_CHARACTERS
from agent.identity import Identity
from agent.layout import DeploymentRoot
from agent.metrics import EVENTS, LAST_HEARTBEAT, RECONNECTS, STREAM_CONNECTED
from agent.outbox import Outbox
from agent.output import LiveOutput
from agent.spec import EventCommand
from agent.tracker import REPORTS_KEPT, CommandTracker
from deploy import certproof
from deploy.backoff import RECONNECT_CHANNEL_OPTIONS, Backoff
from deploy.endpoints import parse_endpoint
from deploy.hookoutput import OutputLine, line_to_proto
from deploy.lifecycle import EVENT_NAMES, passes
from deploy.private import private_dir
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
SEEN_KEPT = 10_000
"""Command ids remembered so a re-sent command is never run twice; the oldest are forgotten
(a command that old is long finished on the server)."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long a stopping agent waits for its hooks to be killed."""
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    *RECONNECT_CHANNEL_OPTIONS,
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


def stopped(reason: str) -> EventFailed:
    """A command the fleet cancelled (its deployment was stopped)."""
    return EventFailed(
        ErrorCode.UNKNOWN_ERROR, f"Failed: {reason}; the lifecycle event was stopped"
    )


def skipped(command_id: str, why: str) -> agent_pb2.ConnectRequest:
    """A command that never started (nothing of it ran on this host)."""
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id,
            status=common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED,
            diagnostics=common_pb2.Diagnostics(message=f"Skipped: {why}"),
        )
    )


def succeeded(command_id: str, notes: tuple[str, ...] = ()) -> agent_pb2.ConnectRequest:
    """A success report; `notes` (the appspec's warnings) go in its log tail, bounded."""
    tail = "".join(f"warning: {note}\n" for note in notes)
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id,
            status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
            diagnostics=common_pb2.Diagnostics(
                error_code=common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS,
                message="Succeeded",
                log_tail=tail[:TAIL_CHARACTERS],
            ),
        )
    )


def output(command_id: str, lines: list[OutputLine]) -> agent_pb2.ConnectRequest:
    """Hook output lines of a running command."""
    message = agent_pb2.CommandOutput(
        command_id=command_id, lines=[line_to_proto(line) for line in lines]
    )
    return agent_pb2.ConnectRequest(output=message)


class EnrolmentFailed(Exception):
    """The fleet did not take the join token (or could not be reached to spend it)."""

    def __init__(self, error: grpc.RpcError) -> None:
        super().__init__(error.details())
        self.error = error


class SeenCommands:
    """The newest `limit` command ids received, oldest forgotten first, with how each one
    that ended here ended (a chain goes on only after one that passed)."""

    def __init__(self, limit: int) -> None:
        self._ids: OrderedDict[str, int] = OrderedDict()
        self._limit = limit

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self, command_id: str, status: int = common_pb2.LIFECYCLE_EVENT_STATUS_UNSPECIFIED
    ) -> None:
        self._ids[command_id] = status
        self._ids.move_to_end(command_id)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def status(self, command_id: str) -> int:
        """How the command ended here (UNSPECIFIED: not ended here, or forgotten)."""
        return self._ids.get(command_id, common_pb2.LIFECYCLE_EVENT_STATUS_UNSPECIFIED)


def runs_after(command: EventCommand, before: int) -> bool:
    """Whether a command held after another runs, the other having ended with status
    `before`: if it passed — Succeeded, or Failed where the deployment ignores that event's
    failure (the event before this one in the spec's order; `deploy.lifecycle.passes`)."""
    if before == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED:
        return True
    if before != common_pb2.LIFECYCLE_EVENT_STATUS_FAILED:
        return False
    events = command.spec.lifecycle_events
    position = events.index(command.event) if command.event in events else 0
    previous = EVENT_NAMES.get(events[position - 1]) if position > 0 else None
    return previous is not None and passes(
        previous, False, command.spec.ignore_application_stop_failures
    )


class AgentSession:
    """Keeps one stream open to the fleet and runs the commands it receives, one at a time."""

    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        root = DeploymentRoot(private_dir(config.root_dir))
        self._identity = Identity(config.identity_dir)
        self._channel = channel(config, self._identity)
        self._runner = EventRunner(
            config,
            RevisionSource(
                self._channel,
                BundleCache(root.bundle_cache, config.max_revisions),
                root.git_cache,
                config.fetch,
            ),
        )
        self._tracker = CommandTracker(root.ongoing)
        self._reports: deque[agent_pb2.ConnectRequest] = deque(maxlen=REPORTS_KEPT)
        self._outbox: Outbox | None = None
        self._seen: SeenCommands = SeenCommands(SEEN_KEPT)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        """Commands received and not finished (waiting for their turn or running), by id."""
        self._cancelled: dict[str, str] = {}
        """Commands the fleet asked to stop, with why."""
        self._heartbeat_seconds = 5.0
        self.connected = asyncio.Event()
        tracked = self._tracker.recover()
        for report in tracked.finished:
            self._seen.add(report.finished.command_id, report.finished.status)
            self._reports.append(report)
        for command_id in tracked.interrupted:
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
                await self._keep_identity()
                await self._run_stream()
                backoff.reset()
            except EnrolmentFailed as failure:
                log.error(
                    "enrolment failed; trying again (a used or expired join token needs a new "
                    "one: deploy create-join-token, or register the instance again)",
                    extra={
                        "fields": {
                            "server": self._config.server,
                            "code": str(failure.error.code()),
                            "details": failure.error.details(),
                            "instance": self._config.instance_name,
                        }
                    },
                )
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
            if self.connected.is_set():
                RECONNECTS.inc()  # counted when the stream that was open is opened again
            self.connected.clear()
            STREAM_CONNECTED.set(0)
            await asyncio.sleep(backoff.next_delay() or backoff.maximum)

    async def _keep_identity(self) -> None:
        """Enrol with the configured join token when the host has no certificate yet; renew
        one past half its life (a failed renewal keeps the current one, tried again later)."""
        name = self._config.instance_name
        if not self._identity.enrolled and self._config.join_token:
            try:
                enrolled = await self._identity.enrol(self._channel, self._config.join_token, name)
            except grpc.RpcError as error:
                raise EnrolmentFailed(error) from error
            log.info("enrolled", extra={"fields": {"instance": enrolled}})
        elif self._identity.renewal_due(datetime.datetime.now(datetime.UTC)):
            try:
                await self._identity.renew(self._channel, name)
            except grpc.RpcError as error:
                log.warning(
                    "certificate renewal failed; keeping the current one",
                    extra={"fields": {"instance": name, "details": error.details()}},
                )
                return
            expires = self._identity.expires().isoformat()
            log.info(
                "certificate renewed", extra={"fields": {"instance": name, "expires": expires}}
            )

    async def close(self) -> None:
        """Stop running events (their scripts' process groups are killed; they are reported
        interrupted after the next start), within a bounded grace, then the stream."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
        self._tracker.close()
        await self._channel.close()

    async def _run_stream(self) -> None:
        outbox = Outbox()
        hello = agent_pb2.AgentHello(
            instance_name=self._config.instance_name,
            agent_version=AGENT_VERSION,
            tags=[common_pb2.Tag(key=k, value=v) for k, v in self._config.tags.items()],
        )
        outbox.send(agent_pb2.ConnectRequest(hello=hello))
        for report in self._reports:
            outbox.send(report)
        held = agent_pb2.AgentSync(command_ids=list(self._running))
        outbox.send(agent_pb2.ConnectRequest(sync=held))
        self._outbox = outbox
        stub = agent_pb2_grpc.AgentGatewayStub(self._channel)
        call = stub.Connect(outbox.messages())
        chores = [
            asyncio.create_task(self._heartbeats(outbox)),
            asyncio.create_task(self._renewals()),
        ]
        try:
            async for message in call:
                self._receive(message)
        finally:
            outbox.close()
            self._outbox = None
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)

    async def _heartbeats(self, outbox: Outbox) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            stamp = Timestamp()
            stamp.GetCurrentTime()
            outbox.send(agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat(sent_at=stamp)))
            LAST_HEARTBEAT.set_to_current_time()

    async def _renewals(self) -> None:
        """The certificate's renewal when it is due, while the stream stays open — beside the
        heartbeats, never in their way (a slow renewal must not make the host look offline)."""
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            await self._keep_identity()

    def _receive(self, message: agent_pb2.ConnectResponse) -> None:
        kind = message.WhichOneof("body")
        if kind == "welcome":
            self._heartbeat_seconds = float(message.welcome.heartbeat_interval_seconds or 5)
            if self._outbox is not None:
                self._outbox.together = message.welcome.reports_together
            self.connected.set()
            STREAM_CONNECTED.set(1)
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
            refusal = self._identity.refusal(command, datetime.datetime.now(datetime.UTC))
            if refusal is not None:  # run nothing; the deployment learns why at once
                log.error(
                    "lifecycle command refused",
                    extra={"fields": {"command_id": command.command_id, "reason": refusal}},
                )
                error = EventFailed(ErrorCode.UNKNOWN_ERROR, f"Refused: {refusal}")
                self._report(failed(command.command_id, error))
                return
            self._seen.add(command.command_id)
            # It waits for the one ahead of it: tell the fleet — unless it is held after
            # another of its chain (the fleet lets those wait as long as the one running).
            if self._running and not command.after_command_id:
                queued = agent_pb2.CommandQueued(command_id=command.command_id)
                self._send(agent_pb2.ConnectRequest(queued=queued))
                log.info(
                    "lifecycle event queued behind the running one",
                    extra={"fields": {"command_id": command.command_id}},
                )
            task = asyncio.create_task(self._execute(command_from_proto(command)))
            self._tasks.add(task)
            self._running[command.command_id] = task
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: self._running.pop(command.command_id, None))
        elif kind == "cancel":
            self._cancel(message.cancel.command_id, message.cancel.reason)

    def _cancel(self, command_id: str, reason: str) -> None:
        """Stop a command: a running one's scripts are killed (their process groups; reported
        Failed), a waiting one never starts, one not received yet is refused when it comes
        (both reported Skipped). A finished one keeps the result already reported."""
        reason = reason or "the command was cancelled"
        task = self._running.get(command_id)
        if task is not None:
            self._cancelled[command_id] = reason
            task.cancel()
        elif command_id not in self._seen:
            self._seen.add(command_id)
            self._report(skipped(command_id, f"{reason} before the lifecycle event started"))

    def _send(self, message: agent_pb2.ConnectRequest) -> None:
        if self._outbox is not None:
            self._outbox.send(message)

    def _send_report(self, report: agent_pb2.ConnectRequest, more: bool = True) -> None:
        """A command's start or output (its end follows: `more`), or its end."""
        if self._outbox is not None:
            self._outbox.report(report, more)

    def _report(self, report: agent_pb2.ConnectRequest, more: bool = False) -> None:
        """Send a finished report, and keep it to send again after a reconnect; `more`:
        another command waits to run right after (the report may wait for its reports)."""
        self._reports.append(report)
        self._send_report(report, more)

    async def _execute(self, command: EventCommand) -> None:
        command_id = command.command_id
        fields = {
            "deployment_id": command.spec.deployment_id,
            "instance": self._config.instance_name,
            "event": command.event,
            "command_id": command_id,
        }
        started = False
        try:
            async with self._lock:
                after = command.after_command_id
                if after and not runs_after(command, self._seen.status(after)):
                    self._end(command, skipped(command_id, f"{after} did not pass on this host"))
                    return
                started = True
                self._tracker.begin(command_id)
                budget = await self._runner.time_budget(command)  # never raises
                self._send_report(
                    agent_pb2.ConnectRequest(
                        started=agent_pb2.CommandStarted(
                            command_id=command_id, timeout_seconds=budget
                        )
                    )
                )
                log.info("lifecycle event started", extra={"fields": fields})
                live = LiveOutput(lambda lines: self._send_report(output(command_id, lines)))
                try:
                    report = await self._run(command, live, fields)
                finally:
                    live.close()  # its last lines go before its result
        except asyncio.CancelledError:
            reason = self._cancelled.pop(command_id, None)
            if reason is None:
                raise  # the agent is stopping: reported as interrupted when it starts again
            if started:
                report = failed(command_id, stopped(reason))
            else:
                report = skipped(command_id, f"{reason} before the lifecycle event started")
            log.warning("lifecycle event stopped", extra={"fields": {**fields, "reason": reason}})
        self._end(command, report)

    def _end(self, command: EventCommand, report: agent_pb2.ConnectRequest) -> None:
        """Keep and send the command's report; remember how it ended (a chain goes on after
        it only if it passed)."""
        self._tracker.end(command.command_id, report)
        status = report.finished.status
        self._seen.add(command.command_id, status)
        if status != common_pb2.LIFECYCLE_EVENT_STATUS_SKIPPED:  # it ran
            succeeded_now = status == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
            EVENTS.labels(command.event, "Succeeded" if succeeded_now else "Failed").inc()
        self._report(report, more=any(c != command.command_id for c in self._running))

    async def _run(
        self, command: EventCommand, live: LiveOutput, fields: dict[str, str]
    ) -> agent_pb2.ConnectRequest:
        """Run the event; its Succeeded or Failed report."""
        try:
            notes = await self._runner.run(command, live)
            return succeeded(command.command_id, notes)
        except EventFailed as error:
            log.warning(
                "lifecycle event failed", extra={"fields": {**fields, "error": error.message}}
            )
            return failed(command.command_id, error)
        except Exception as error:  # the boundary: whatever breaks is reported, never left
            log.exception("lifecycle event failed unexpectedly", extra={"fields": fields})
            message = f"{type(error).__name__}: {error}"
            return failed(command.command_id, EventFailed(ErrorCode.UNKNOWN_ERROR, message))


def channel(config: AgentConfig, identity: Identity) -> grpc.aio.Channel:
    """Over TLS (trusting `ca_file`, else the authority received at enrolment, else the
    system's roots) unless the server is an http:// one; every call proved with the instance's
    certificate once it has one."""
    proofs = certproof.interceptors(identity.credential)
    server = parse_endpoint(config.server)
    if not server.tls:
        return grpc.aio.insecure_channel(
            server.target, options=CHANNEL_OPTIONS, interceptors=proofs
        )
    authority = config.ca_certificate or identity.authority() or None
    credentials = grpc.ssl_channel_credentials(root_certificates=authority)
    return grpc.aio.secure_channel(
        server.target, credentials, options=CHANNEL_OPTIONS, interceptors=proofs
    )
