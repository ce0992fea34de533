"""Creating groups and deployments: resolve names through the peers, then record and start."""

from __future__ import annotations

import dataclasses
import logging

from services.orchestrator.catchup import outdated_instances
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.controller import RolloutController
from services.orchestrator.domain import (
    DeploymentErrorCode,
    DeploymentGroup,
    DeploymentRequest,
    ErrorInformation,
    GroupChange,
)
from services.orchestrator.group_store import GroupStore
from services.orchestrator.lifecycle import in_place_events
from services.orchestrator.peers import FleetClient, RegistryClient, TrafficClient
from services.orchestrator.rollout import feasible
from services.orchestrator.store import DeploymentStore

log = logging.getLogger(__name__)


class Deployments:
    """The orchestrator's write operations that span peers, its store and the control loop."""

    def __init__(
        self,
        groups: GroupStore,
        deployments: DeploymentStore,
        configs: ConfigStore,
        registry: RegistryClient,
        fleet: FleetClient,
        traffic: TrafficClient,
        controller: RolloutController,
    ) -> None:
        self._traffic = traffic
        self._groups = groups
        self._configs = configs
        self._deployments = deployments
        self._registry = registry
        self._fleet = fleet
        self._controller = controller

    async def create_group(self, application: str, group: DeploymentGroup) -> DeploymentGroup:
        await self._registry.require_application(application)
        await self._configs.get(group.config_name)
        await self._require_target_groups(group.target_groups)
        return await self._groups.create(application, group)

    async def update_group(self, application: str, name: str, change: GroupChange) -> None:
        if change.config_name is not None:
            await self._configs.get(change.config_name)
        await self._require_target_groups(change.target_groups or ())
        await self._groups.update(application, name, change)

    async def _require_target_groups(self, names: tuple[str, ...]) -> None:
        for name in names:
            await self._traffic.require_target_group(name)

    async def instances(self, group: DeploymentGroup) -> list[str]:
        """The registered instances the group's filters or tag set match, sorted."""
        registered = await self._fleet.registered_instances()
        return sorted(name for name, tags in registered.items() if group.matches(tags))

    async def create_deployment(self, request: DeploymentRequest) -> str:
        """Validate against the peers, record the deployment, and start it."""
        await self._registry.require_application(request.application_name)
        group = await self._groups.get(request.application_name, request.group_name)
        revision = await self._registry.register_revision(
            request.application_name, request.revision, group.name
        )
        config = await self._configs.get(request.config_name or group.config_name)
        request = dataclasses.replace(request, config_name=config.name, revision=revision)
        instances = await self.instances(group)
        minimum = config.minimum_healthy(len(instances))
        error = _cannot_start(len(instances), minimum)
        targets = instances
        if request.update_outdated_instances_only and error is None:
            targets = outdated_instances(
                instances,
                await self._deployments.instance_revisions(group.id),
                request.revision,
                request.catch_up_since,
            )
        deployment_id = await self._deployments.create(
            request,
            group,
            minimum,
            targets,
            in_place_events(bool(group.traffic_groups)),
            error,
            untouched_healthy=len(instances) - len(targets),
        )
        log.info(
            "deployment created",
            extra={
                "fields": {
                    "deployment_id": deployment_id,
                    "group": group.name,
                    "instances": len(targets),
                    "creator": request.creator,
                }
            },
        )
        if error is None:
            await self._controller.kick(deployment_id)
        return deployment_id


def _cannot_start(instances: int, minimum_healthy: int) -> ErrorInformation | None:
    if instances == 0:
        return ErrorInformation(
            DeploymentErrorCode.NO_INSTANCES,
            "The deployment failed because no instances were found for your deployment group.",
        )
    reason = feasible(instances, minimum_healthy)
    if reason:
        return ErrorInformation(DeploymentErrorCode.HEALTH_CONSTRAINTS_INVALID, reason)
    return None
