"""Simulated agents: many AgentGateway sessions in one thread of the test process, speaking the
real protocol (hello, heartbeats, started/finished reports), for fleets too big for a process
per host, and for agents that misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc

from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2

RECONNECT_SECONDS = 0.5


@dataclass
class SimulatedAgents:
    """`names` connect to `address` with `tags`; every command is answered Succeeded at once,
    or never acknowledged when `answer` is False."""

    address: str
    names: Sequence[str]
    tags: dict[str, str]
    answer: bool = True
    heartbeat_seconds: float = 1.0
    received: list[str] = field(default_factory=list)
    """Command ids received, in order (from every session)."""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopped: asyncio.Event | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> SimulatedAgents:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError("simulated agents did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        channel = grpc.aio.insecure_channel(self.address)
        stub = agent_pb2_grpc.AgentGatewayStub(channel)
        sessions = [asyncio.create_task(self._session(stub, n)) for n in self.names]
        self._ready.set()
        await self._stopped.wait()
        await channel.close(grace=None)  # ends every stream; the sessions see it and return
        await asyncio.wait(sessions, timeout=10)

    async def _session(self, stub: agent_pb2_grpc.AgentGatewayStub, name: str) -> None:
        """One agent: reconnects (after a short pause) whenever its stream ends."""
        assert self._stopped is not None
        while not self._stopped.is_set():
            outbox: asyncio.Queue[agent_pb2.ConnectRequest] = asyncio.Queue()
            hello = agent_pb2.AgentHello(
                instance_name=name,
                tags=[common_pb2.Tag(key=k, value=v) for k, v in self.tags.items()],
            )
            outbox.put_nowait(agent_pb2.ConnectRequest(hello=hello))
            beats = asyncio.create_task(self._heartbeats(outbox))
            try:
                async for message in stub.Connect(_drain(outbox)):
                    if message.WhichOneof("body") == "command":
                        self._on_command(message.command.command_id, outbox)
            except grpc.aio.AioRpcError:
                pass
            finally:
                beats.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), RECONNECT_SECONDS)

    def _on_command(self, command_id: str, outbox: asyncio.Queue[agent_pb2.ConnectRequest]) -> None:
        self.received.append(command_id)
        if not self.answer:
            return
        outbox.put_nowait(
            agent_pb2.ConnectRequest(started=agent_pb2.CommandStarted(command_id=command_id))
        )
        outbox.put_nowait(
            agent_pb2.ConnectRequest(
                finished=agent_pb2.CommandFinished(
                    command_id=command_id,
                    status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED,
                    diagnostics=common_pb2.Diagnostics(
                        error_code=common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS
                    ),
                )
            )
        )

    async def _heartbeats(self, outbox: asyncio.Queue[agent_pb2.ConnectRequest]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            outbox.put_nowait(agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat()))


async def _drain(
    outbox: asyncio.Queue[agent_pb2.ConnectRequest],
) -> AsyncIterator[agent_pb2.ConnectRequest]:
    while True:
        yield await outbox.get()
