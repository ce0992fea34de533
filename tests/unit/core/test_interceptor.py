"""The server interceptor around a stream whose client hangs up: the call is counted CANCELLED
and audited with the peer read while it was alive; its context is never touched again (the
call's memory may be gone — reading the peer then crashed the process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from services.core.access import Admission
from services.core.interceptor import _Call, _wrap_stream
from services.core.metrics import GRPC_HANDLED

METHOD = "/deploy.v1.Orchestrator/WatchDeployment"


class Context:
    """What the handler may use of a call, until the client leaves."""

    def __init__(self) -> None:
        self.gone = False

    def peer(self) -> str:
        assert not self.gone, "the context was touched after the client left"
        return "ipv4:127.0.0.1:5000"

    def invocation_metadata(self) -> tuple[()]:
        assert not self.gone, "the context was touched after the client left"
        return ()


class Gate:
    def __init__(self) -> None:
        self.audits: list[tuple[str, str]] = []

    async def admit(self, method: str, request: Any, metadata: Any) -> Admission:
        return Admission(rule=None)  # type: ignore[arg-type]

    async def audit(self, admission: Admission, result: str, source: str) -> None:
        self.audits.append((result, source))


async def updates(request: Any, context: Any) -> AsyncIterator[str]:
    while True:
        yield "update"


def test_a_stream_the_client_left_is_counted_cancelled_without_touching_its_call() -> None:
    gate, context = Gate(), Context()
    handler = _wrap_stream(_Call(gate, METHOD, streamed_request=False), updates)  # type: ignore[arg-type]
    cancelled = GRPC_HANDLED.labels("deploy.v1.Orchestrator", "WatchDeployment", "CANCELLED")
    before = cancelled._value.get()

    async def hang_up() -> None:
        stream = handler(object(), context)
        assert await stream.__anext__() == "update"
        context.gone = True
        await stream.aclose()  # what gRPC does when the client goes away

    asyncio.run(hang_up())
    assert gate.audits == [("CANCELLED", "ipv4:127.0.0.1:5000")]
    assert cancelled._value.get() == before + 1
