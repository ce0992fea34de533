"""Creating groups and deployments: resolve names through the peers, then record and start."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.lifecycle import (
    ALLOW_TRAFFIC_EVENTS,
    BLOCK_TRAFFIC_EVENTS,
    IN_PLACE_EVENTS,
    in_place_events,
)
from services.core.errors import InvalidArgument
from services.core.tags import Tag, matches_any
from services.orchestrator.bluegreen import BlueGreenConfig, GreenFleetAction
from services.orchestrator.catchup import outdated_instances
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.configs import DeploymentConfig
from services.orchestrator.controller import RolloutController
from services.orchestrator.domain import (
    DeploymentErrorCode,
    DeploymentRequest,
    ErrorInformation,
    PlannedTarget,
    TargetLabel,
)
from services.orchestrator.group_store import GroupStore
from services.orchestrator.groups import DeploymentGroup, GroupChange
from services.orchestrator.peers import FleetClient, RegistryClient, TrafficClient
from services.orchestrator.provisioner import Provisioners
from services.orchestrator.rollout import infeasible
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
        provisioners: Provisioners,
    ) -> None:
        self._provisioners = provisioners
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
        self._require_provisioner(group.blue_green)
        return await self._groups.create(application, group)

    async def update_group(self, application: str, name: str, change: GroupChange) -> None:
        if change.config_name is not None:
            await self._configs.get(change.config_name)
        await self._require_target_groups(change.target_groups or ())
        if change.blue_green is not None:
            self._require_provisioner(change.blue_green)
        await self._groups.update(application, name, change)

    def _require_provisioner(self, config: BlueGreenConfig) -> None:
        self._provisioners.require(
            "blueGreenDeploymentConfiguration.greenFleetProvisioningOption.provisionerName",
            config.provisioner,
        )

    async def _require_target_groups(self, names: tuple[str, ...]) -> None:
        for name in names:
            await self._traffic.require_target_group(name)

    async def instances(self, group: DeploymentGroup) -> list[str]:
        """The registered instances the group's filters or tag set match, sorted."""
        return _members(group, await self._fleet.registered_instances())

    async def create_deployment(self, request: DeploymentRequest) -> str:
        """Validate against the peers, record the deployment, and start it."""
        await self._registry.require_application(request.application_name)
        group = await self._groups.get(request.application_name, request.group_name)
        blue_green = group.blue_green_style and not request.update_outdated_instances_only
        if blue_green:
            _check_replacement_fleet(group, request)
        revision = await self._registry.register_revision(
            request.application_name, request.revision, group.name
        )
        config = await self._configs.get(request.config_name or group.config_name)
        request = dataclasses.replace(request, config_name=config.name, revision=revision)
        registered = await self._fleet.registered_instances()
        instances = _members(group, registered)
        if blue_green:
            plan = _blue_green_plan(group, request, config, registered, instances)
        else:
            plan = await self._in_place_plan(group, request, config, instances)
        deployment_id = await self._deployments.create(
            request,
            group,
            plan.minimum_healthy,
            plan.targets,
            plan.error,
            untouched_healthy=plan.untouched_healthy,
            routing=config.routing,
        )
        log.info(
            "deployment created",
            extra={
                "fields": {
                    "deployment_id": deployment_id,
                    "group": group.name,
                    "instances": len(plan.targets),
                    "creator": request.creator,
                }
            },
        )
        if plan.error is None:
            self._controller.kick(deployment_id)
        return deployment_id

    async def _in_place_plan(
        self,
        group: DeploymentGroup,
        request: DeploymentRequest,
        config: DeploymentConfig,
        instances: list[str],
    ) -> Plan:
        """Every instance of the group (or, outdated-only, those not on the revision) runs the
        in-place events; with traffic control, leaving and rejoining the load balancer."""
        minimum = config.minimum_healthy(len(instances))
        error = _cannot_start(len(instances), minimum)
        chosen = instances
        if request.update_outdated_instances_only and error is None:
            chosen = outdated_instances(
                instances,
                await self._deployments.instance_revisions(group.id),
                request.revision,
                request.catch_up_since,
            )
        events = in_place_events(bool(group.traffic_groups))
        return Plan(
            [PlannedTarget(name, events) for name in chosen],
            minimum,
            error,
            untouched_healthy=len(instances) - len(chosen),
        )


def _members(group: DeploymentGroup, registered: Mapping[str, list[Tag]]) -> list[str]:
    return sorted(name for name, tags in registered.items() if group.matches(tags))


@dataclass(frozen=True)
class Plan:
    """What a new deployment will touch."""

    targets: list[PlannedTarget]
    minimum_healthy: int
    error: ErrorInformation | None
    untouched_healthy: int = 0


def _check_replacement_fleet(group: DeploymentGroup, request: DeploymentRequest) -> None:
    """--target-instances names the replacement fleet exactly when the group discovers it."""
    provisioned = group.blue_green.green_fleet is GreenFleetAction.PROVISION
    if provisioned and request.target_instances:
        raise InvalidArgument(
            "targetInstances: the group provisions its replacement fleet; do not name one"
        )
    if not provisioned and not request.target_instances:
        raise InvalidArgument(
            "targetInstances.tagFilters is required: a blue/green deployment of this group "
            "discovers its replacement fleet by tags"
        )


def _blue_green_plan(
    group: DeploymentGroup,
    request: DeploymentRequest,
    config: DeploymentConfig,
    registered: Mapping[str, list[Tag]],
    instances: list[str],
) -> Plan:
    """The group's instances are the originals (blue); the replacement (green) fleet is the
    instances --target-instances matches, or comes later from the group's provisioner. The
    deployment config applies to the replacement fleet."""
    if group.blue_green.green_fleet is GreenFleetAction.PROVISION:
        green: list[str] = []
        count = max(len(instances), 1)
        error = None
    else:
        green = sorted(
            name for name, tags in registered.items() if matches_any(request.target_instances, tags)
        )
        count = len(green)
        error = _cannot_start(count, config.minimum_healthy(count))
    blue = [name for name in instances if name not in green]
    return Plan(
        [PlannedTarget(n, IN_PLACE_EVENTS + ALLOW_TRAFFIC_EVENTS, TargetLabel.GREEN) for n in green]
        + [PlannedTarget(n, BLOCK_TRAFFIC_EVENTS, TargetLabel.BLUE) for n in blue],
        config.minimum_healthy(count),
        error,
    )


def _cannot_start(instances: int, minimum_healthy: int) -> ErrorInformation | None:
    if instances == 0:
        return ErrorInformation(
            DeploymentErrorCode.NO_INSTANCES,
            "The deployment failed because no instances were found for your deployment group.",
        )
    reason = infeasible(instances, minimum_healthy)
    if reason is not None:
        return ErrorInformation(DeploymentErrorCode.HEALTH_CONSTRAINTS_INVALID, reason)
    return None
