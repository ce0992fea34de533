"""An AWS ELBv2 (ALB/NLB) target group through boto3. Blocking calls run in a worker thread.

ELBv2 has no per-target weight: an instance with weight > 0 is registered, 0 deregistered.
Draining is ELBv2's own (the target group's deregistration delay); `open_connections` reports
1 while ELBv2 says the target is still draining.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from services.core.errors import FailedPrecondition, Unavailable
from services.traffic.domain import split_address

HEALTHY_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2
SERVING_STATES = frozenset({"healthy", "unused", "unavailable"})
"""States of a registered target in which ELBv2 routes to it, or has no health check to wait
for (no listener, checks disabled); "initial" and "unhealthy" mean not yet."""


class ELBv2TargetGroupBackend:
    def __init__(self, target_group_arn: str, region: str, endpoint_url: str) -> None:
        self._arn = target_group_arn
        self._region = region
        self._endpoint = endpoint_url
        self._client: Any = None

    async def serve(self, instance: str, address: str, weight: int) -> None:
        if weight == 0:
            await self.drain(instance, address)
            return
        await self._call("register_targets", Targets=[_target(address)])
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        state = ""
        while time.monotonic() < deadline:
            state = await self._state(address)
            if state in SERVING_STATES:
                return
            await asyncio.sleep(POLL_SECONDS)
        raise FailedPrecondition(
            f"instance {instance!r} did not become healthy in {self._arn} within "
            f"{HEALTHY_TIMEOUT_SECONDS:.0f}s (state {state or 'unknown'})"
        )

    async def set_weight(self, instance: str, address: str, weight: int) -> None:
        method = "register_targets" if weight else "deregister_targets"
        await self._call(method, Targets=[_target(address)])

    async def drain(self, instance: str, address: str) -> None:
        await self._call("deregister_targets", Targets=[_target(address)])

    async def open_connections(self, instance: str, address: str) -> int:
        return 1 if await self._state(address) == "draining" else 0

    async def remove(self, instance: str, address: str) -> None:
        """Deregistered by `drain` already; ELBv2 forgets a target once it has drained."""

    async def _state(self, address: str) -> str:
        answer = await self._call("describe_target_health", Targets=[_target(address)])
        for description in answer.get("TargetHealthDescriptions", []):
            return str(description.get("TargetHealth", {}).get("State", ""))
        return ""

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            if self._client is None:
                self._client = boto3.client(
                    "elbv2", region_name=self._region or None, endpoint_url=self._endpoint or None
                )
            result: dict[str, Any] = getattr(self._client, method)(
                TargetGroupArn=self._arn, **kwargs
            )
            return result

        try:
            return await asyncio.to_thread(call)
        except (ClientError, NoCredentialsError) as error:
            raise FailedPrecondition(f"ELBv2 {method} on {self._arn}: {error}") from error
        except BotoCoreError as error:
            raise Unavailable(f"ELBv2 {method} on {self._arn}: {error}") from error


def _target(address: str) -> dict[str, Any]:
    host, port = split_address("address", address)
    return {"Id": host, "Port": port}
