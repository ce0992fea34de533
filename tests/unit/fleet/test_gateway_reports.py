"""An agent's reports are written without waiting for one another, in order, and a flood of
them is slowed rather than buffered without bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from deploy.v1 import agent_pb2, common_pb2
from services.fleet.gateway import REPORTS_IN_FLIGHT, AgentGatewayServicer
from services.fleet.sessions import AgentSession


class SlowBus:
    """Holds every report until let go, counting those held at once."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.holding = 0
        self.most = 0
        self.order: list[str] = []

    async def report(self, instance_name: str, command_id: str, *_: Any) -> None:
        self.order.append(command_id)
        self.holding += 1
        self.most = max(self.most, self.holding)
        await self.released.wait()
        self.holding -= 1


def finished(command_id: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id, status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
        )
    )


async def turns(count: int) -> None:
    """Let the event loop take `count` turns (no clock involved)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def turns_until(condition: Callable[[], bool], most: int = 10_000) -> None:
    for _ in range(most):
        if condition():
            return
        await turns(1)
    raise AssertionError("the condition never held")


def test_a_flood_of_reports_is_read_only_as_fast_as_they_are_written() -> None:
    async def scenario() -> tuple[int, int, list[str]]:
        bus = SlowBus()
        gateway = AgentGatewayServicer.__new__(AgentGatewayServicer)
        gateway._bus = bus  # type: ignore[assignment]
        sent = [f"c-{i}" for i in range(10 * REPORTS_IN_FLIGHT)]
        read = 0

        async def messages() -> AsyncIterator[agent_pb2.ConnectRequest]:
            nonlocal read
            for command_id in sent:
                read += 1
                yield finished(command_id)

        reader = asyncio.ensure_future(gateway._read(messages(), AgentSession("web-1", 5)))
        await turns_until(lambda: bus.holding == REPORTS_IN_FLIGHT)
        await turns(100)  # it could read on now: it must not
        read_while_held = read
        bus.released.set()
        await asyncio.wait_for(reader, 5)
        await asyncio.sleep(0)
        return read_while_held, bus.most, bus.order

    read_while_held, most, order = asyncio.run(scenario())
    assert most == REPORTS_IN_FLIGHT  # written together, up to the bound
    assert read_while_held == REPORTS_IN_FLIGHT + 1  # the stream was read no further
    assert order == [f"c-{i}" for i in range(10 * REPORTS_IN_FLIGHT)]  # in the order sent


def test_reports_sent_together_are_applied_in_their_order() -> None:
    async def scenario() -> list[str]:
        bus = SlowBus()
        bus.released.set()
        gateway = AgentGatewayServicer.__new__(AgentGatewayServicer)
        gateway._bus = bus  # type: ignore[assignment]
        together = agent_pb2.AgentReports(
            reports=[
                agent_pb2.AgentReport(finished=finished(f"c-{i}").finished) for i in range(1, 4)
            ]
        )

        async def messages() -> AsyncIterator[agent_pb2.ConnectRequest]:
            yield finished("c-0")
            yield agent_pb2.ConnectRequest(reports=together)
            yield finished("c-4")

        await asyncio.wait_for(gateway._read(messages(), AgentSession("web-1", 5)), 5)
        await turns_until(lambda: len(bus.order) == 5)
        return bus.order

    assert asyncio.run(scenario()) == [f"c-{i}" for i in range(5)]
