"""An agent's reports of events run back to back travel together, in order, and none waits
long: not past the linger, not once nothing more is to run, not behind another message."""

from __future__ import annotations

import asyncio

from agent.outbox import LINGER_SECONDS, Outbox
from deploy.v1 import agent_pb2, common_pb2


def started(command_id: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(started=agent_pb2.CommandStarted(command_id=command_id))


def finished(command_id: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        finished=agent_pb2.CommandFinished(
            command_id=command_id, status=common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
        )
    )


def sent(outbox: Outbox) -> list[agent_pb2.ConnectRequest]:
    messages = []
    while not outbox.queue.empty():
        message = outbox.queue.get_nowait()
        assert message is not None  # the outbox is not closed
        messages.append(message)
    return messages


def ids(message: agent_pb2.ConnectRequest) -> list[str]:
    """The command ids a message reports, in order."""
    reports = message.reports.reports if message.WhichOneof("body") == "reports" else [message]
    return [getattr(r, r.WhichOneof("body")).command_id for r in reports]


def test_a_chain_s_reports_go_as_one_message_once_nothing_more_is_to_run() -> None:
    async def scenario() -> list[agent_pb2.ConnectRequest]:
        outbox = Outbox()
        outbox.together = True
        for command_id in ("a", "b"):
            outbox.report(started(command_id), more=True)
            outbox.report(finished(command_id), more=command_id != "b")
            if command_id == "a":
                assert outbox.queue.empty()  # held while the chain goes on
        return sent(outbox)

    messages = asyncio.run(scenario())
    assert len(messages) == 1
    assert messages[0].WhichOneof("body") == "reports"
    kinds = [r.WhichOneof("body") for r in messages[0].reports.reports]
    assert kinds == ["started", "finished", "started", "finished"]
    assert ids(messages[0]) == ["a", "a", "b", "b"]


def test_a_held_report_goes_by_itself_after_the_linger() -> None:
    async def scenario() -> tuple[agent_pb2.ConnectRequest, float]:
        outbox = Outbox()
        outbox.together = True
        loop = asyncio.get_running_loop()
        began = loop.time()
        outbox.report(started("a"), more=True)
        message = await asyncio.wait_for(outbox.queue.get(), 5)
        return message, loop.time() - began

    message, waited = asyncio.run(scenario())
    assert message.WhichOneof("body") == "started"  # alone: sent as it was
    assert waited >= LINGER_SECONDS * 0.9


def test_another_message_sends_the_held_reports_before_it() -> None:
    async def scenario() -> list[agent_pb2.ConnectRequest]:
        outbox = Outbox()
        outbox.together = True
        outbox.report(started("a"), more=True)
        outbox.send(agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat()))
        return sent(outbox)

    messages = asyncio.run(scenario())
    assert [m.WhichOneof("body") for m in messages] == ["started", "heartbeat"]


def test_reports_go_one_by_one_to_a_server_that_does_not_take_them_together() -> None:
    async def scenario() -> list[agent_pb2.ConnectRequest]:
        outbox = Outbox()  # no Welcome saying otherwise
        outbox.report(started("a"), more=True)
        outbox.report(finished("a"), more=True)
        return sent(outbox)

    messages = asyncio.run(scenario())
    assert [m.WhichOneof("body") for m in messages] == ["started", "finished"]


def test_a_closed_outbox_ends_its_messages_without_what_it_held() -> None:
    async def scenario() -> list[agent_pb2.ConnectRequest]:
        outbox = Outbox()
        outbox.together = True
        outbox.send(agent_pb2.ConnectRequest(heartbeat=agent_pb2.Heartbeat()))
        outbox.report(started("a"), more=True)
        outbox.close()

        async def collect() -> list[agent_pb2.ConnectRequest]:
            return [message async for message in outbox.messages()]

        return await asyncio.wait_for(collect(), 5)  # they end: no wait on an empty queue

    messages = asyncio.run(scenario())
    assert [m.WhichOneof("body") for m in messages] == ["heartbeat"]
