"""What an agent sends up its stream, in order — its reports gathered for a moment.

An agent running a chain of quick hooks ends one event and starts the next within
milliseconds. Sent one by one, each report costs the fleet a write and the orchestrator a
step; gathered, a host's seven no-op events cost one of each (as a Kafka producer's linger
gathers records into a batch). A report waits at most LINGER_SECONDS, and not at all once
the agent has nothing more to run: the end of a chain, a failure, a stop go out at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from deploy.v1 import agent_pb2

LINGER_SECONDS = 0.025
"""How long a report may wait for the ones that follow it."""


class Outbox:
    """One stream's outgoing messages. Reports `report()`ed with more to come are held until
    nothing more is to come, LINGER_SECONDS after the first of them, or any other message —
    then sent as one AgentReports (when the server's Welcome said it takes them: `together`)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[agent_pb2.ConnectRequest | None] = asyncio.Queue()
        """What is sent, in order; None once closed."""
        self.together = False
        self._held: list[agent_pb2.ConnectRequest] = []
        self._due: asyncio.TimerHandle | None = None

    def send(self, message: agent_pb2.ConnectRequest) -> None:
        """Send `message` after the reports held (the order sent is the order applied)."""
        self.flush()
        self.queue.put_nowait(message)

    def report(self, message: agent_pb2.ConnectRequest, more: bool) -> None:
        """Send a report (started, output, finished); `more`: the agent goes on at once to
        more that it will report (the command's own end, the next event of its chain)."""
        self._held.append(message)
        if not (more and self.together):
            self.flush()
        elif self._due is None:
            self._due = asyncio.get_running_loop().call_later(LINGER_SECONDS, self.flush)

    def flush(self) -> None:
        """Send what is held now."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if not self._held:
            return
        held, self._held = self._held, []
        if len(held) == 1:
            self.queue.put_nowait(held[0])
            return
        reports = agent_pb2.AgentReports(reports=[_as_report(message) for message in held])
        self.queue.put_nowait(agent_pb2.ConnectRequest(reports=reports))

    async def messages(self) -> AsyncIterator[agent_pb2.ConnectRequest]:
        """The stream's requests; they end once the outbox is closed, so that gRPC's task
        writing them ends with the stream rather than waiting on the queue until it is
        collected (which asyncio logs as an error on every reconnect)."""
        while (message := await self.queue.get()) is not None:
            yield message

    def close(self) -> None:
        """The stream has ended: what is held goes with it, as anything sent on it would
        (the agent sends its finished reports again on the next stream)."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        self._held = []
        self.queue.put_nowait(None)


def _as_report(message: agent_pb2.ConnectRequest) -> agent_pb2.AgentReport:
    kind = message.WhichOneof("body")
    report = agent_pb2.AgentReport()
    getattr(report, kind).CopyFrom(getattr(message, kind))  # type: ignore[arg-type]
    return report
