"""Deployment configurations: the built-in CodeDeployDefault ones and minimum-healthy-hosts math."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from services.core.errors import InvalidArgument
from services.orchestrator.bluegreen import TrafficRouting


class MinimumHealthyType(StrEnum):
    HOST_COUNT = "HOST_COUNT"
    FLEET_PERCENT = "FLEET_PERCENT"
    MOST_CONCURRENCY = "MOST_CONCURRENCY"
    """Read-only type of CodeDeployDefault.OneAtATime: one at a time, all but the last must pass."""


@dataclass(frozen=True)
class DeploymentConfig:
    name: str
    minimum_type: MinimumHealthyType
    minimum_value: int
    id: str = ""
    """Empty for the built-in configs."""
    routing: TrafficRouting = field(default_factory=TrafficRouting)
    """How a blue/green deployment moves traffic (AllAtOnce unless set)."""

    def minimum_healthy(self, instances: int) -> int:
        """M, the fewest instances that must stay healthy, fixed at the start of a deployment."""
        if self.minimum_type is MinimumHealthyType.MOST_CONCURRENCY:
            return max(instances - 1, 0)
        if self.minimum_type is MinimumHealthyType.HOST_COUNT:
            return self.minimum_value
        return math.ceil(instances * self.minimum_value / 100)


DEFAULT_CONFIG_NAME = "CodeDeployDefault.OneAtATime"

BUILT_IN_CONFIGS: dict[str, DeploymentConfig] = {
    c.name: c
    for c in (
        DeploymentConfig("CodeDeployDefault.OneAtATime", MinimumHealthyType.MOST_CONCURRENCY, 1),
        DeploymentConfig("CodeDeployDefault.HalfAtATime", MinimumHealthyType.FLEET_PERCENT, 50),
        DeploymentConfig("CodeDeployDefault.AllAtOnce", MinimumHealthyType.HOST_COUNT, 0),
    )
}


RESERVED_PREFIX = "CodeDeployDefault."
MAX_FLEET_PERCENT = 99


def check_custom_config(config: DeploymentConfig) -> DeploymentConfig:
    """CodeDeploy's rules for a user's config: no reserved prefix; HOST_COUNT ≥ 0 or
    FLEET_PERCENT 0-99 (0 means all at once)."""
    if config.name.startswith(RESERVED_PREFIX):
        raise InvalidArgument(
            f"deploymentConfigName {config.name!r}: the prefix {RESERVED_PREFIX} is reserved"
        )
    if config.minimum_type is MinimumHealthyType.MOST_CONCURRENCY:
        raise InvalidArgument("minimumHealthyHosts.type must be HOST_COUNT or FLEET_PERCENT")
    if config.minimum_value < 0:
        raise InvalidArgument("minimumHealthyHosts.value must be 0 or more")
    if (
        config.minimum_type is MinimumHealthyType.FLEET_PERCENT
        and config.minimum_value > MAX_FLEET_PERCENT
    ):
        raise InvalidArgument("minimumHealthyHosts.value must be 0-99 for FLEET_PERCENT")
    config.routing.check()
    return config
