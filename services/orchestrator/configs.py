"""Deployment configurations: the built-in CodeDeployDefault ones and minimum-healthy-hosts math."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from services.core.errors import NotFound


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


def get_config(name: str) -> DeploymentConfig:
    """A deployment config by name (built-in ones only, for now)."""
    try:
        return BUILT_IN_CONFIGS[name]
    except KeyError:
        raise NotFound(f"deployment config {name!r} does not exist") from None
