"""Allow, block and weigh traffic to instances: ask the target group's load balancer, then
record what it now does (and the weight metric).

Every operation is idempotent, so a caller that retries after a crash or a lost answer gets the
same end state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.core.errors import DeployError
from services.core.metrics import TRAFFIC_WEIGHT
from services.traffic.balancers import LoadBalancer
from services.traffic.domain import TargetGroup, TargetState
from services.traffic.store import TrafficStore

log = logging.getLogger(__name__)

DRAIN_POLL_SECONDS = 0.1
"""Load balancers do not announce a connection count reaching zero; a drain re-reads it."""


@dataclass(frozen=True)
class Drained:
    open_connections: int
    """Still open when the instance was taken out (the deregistration delay passed)."""
    seconds: float


class TrafficRouter:
    def __init__(
        self,
        store: TrafficStore,
        balancers: Callable[[TargetGroup], LoadBalancer],
    ) -> None:
        self._store = store
        self._balancers = balancers

    async def allow(self, group_name: str, instance: str, host: str, weight: int) -> str:
        """The instance receives traffic with `weight`; returns the address it is reached at."""
        group = await self._store.get(group_name)
        address = group.address_for(instance, host)
        await self._balancers(group).serve(instance, address, weight)
        await self._store.record(group.name, instance, address, weight, TargetState.SERVING)
        TRAFFIC_WEIGHT.labels(group.name, instance).set(weight)
        log.info(
            "traffic allowed",
            extra={"fields": {"target_group": group.name, "instance": instance, "weight": weight}},
        )
        return address

    async def block(self, group_name: str, instance: str) -> Drained:
        """No new requests to the instance; wait for its connections (at most the group's
        deregistration delay), then take it out."""
        group = await self._store.get(group_name)
        target = group.target(instance)
        if target is None or target.state is TargetState.UNUSED:
            return Drained(0, 0.0)
        balancer = self._balancers(group)
        started = time.monotonic()
        await balancer.drain(instance, target.address)
        await self._store.record(
            group.name, instance, target.address, target.weight, TargetState.DRAINING
        )
        deadline = started + group.deregistration_delay_seconds
        left = await balancer.open_connections(instance, target.address)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
            left = await balancer.open_connections(instance, target.address)
        await balancer.remove(instance, target.address)
        await self._store.record(group.name, instance, target.address, 0, TargetState.UNUSED)
        TRAFFIC_WEIGHT.labels(group.name, instance).set(0)
        drained = Drained(left, time.monotonic() - started)
        log.info(
            "traffic blocked",
            extra={
                "fields": {
                    "target_group": group.name,
                    "instance": instance,
                    "drain_seconds": round(drained.seconds, 3),
                    "open_connections": left,
                }
            },
        )
        return drained

    async def set_weights(self, group_name: str, weights: Mapping[str, int]) -> list[str]:
        """Re-weigh the instances that receive traffic; the others (not in the load balancer)
        are left alone and returned."""
        group = await self._store.get(group_name)
        balancer = self._balancers(group)
        changed, skipped = {}, []
        for instance, weight in weights.items():
            target = group.target(instance)
            if target is None or target.state is not TargetState.SERVING:
                skipped.append(instance)
                continue
            await balancer.set_weight(instance, target.address, weight)
            TRAFFIC_WEIGHT.labels(group.name, instance).set(weight)
            changed[instance] = weight
        await self._store.record_weights(group.name, changed)
        return skipped

    async def restore(self) -> None:
        """Put back what the records say receives traffic (an HAProxy restarted since keeps no
        runtime servers); a draining instance is finished off."""
        for name in await self._store.names():
            group = await self._store.get(name)
            for target in group.targets:
                try:
                    if target.state is TargetState.SERVING:
                        await self._balancers(group).serve(
                            target.instance_name, target.address, target.weight
                        )
                        TRAFFIC_WEIGHT.labels(group.name, target.instance_name).set(target.weight)
                    elif target.state is TargetState.DRAINING:
                        await self.block(group.name, target.instance_name)
                except DeployError as error:
                    log.warning(
                        "could not restore a target",
                        extra={
                            "fields": {
                                "target_group": group.name,
                                "instance": target.instance_name,
                                "error": str(error),
                            }
                        },
                    )
