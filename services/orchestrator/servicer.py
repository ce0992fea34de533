"""Orchestrator's gRPC edge: validate, load, guard, delegate, convert — no business logic here."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import common_pb2, orchestrator_pb2_grpc
from deploy.v1 import orchestrator_pb2 as pb
from services.core.clock import utcnow
from services.core.convert import revision_from_proto, tag_filter_from_proto
from services.core.errors import InvalidArgument
from services.core.names import check_instance_name, check_name, check_text
from services.core.revision import check_revision
from services.core.signal import ChangeSignal
from services.core.tags import TagFilter, check_tag_filters
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.configs import DEFAULT_CONFIG_NAME, check_custom_config
from services.orchestrator.controller import RolloutController
from services.orchestrator.convert import (
    config_from_proto,
    config_to_proto,
    deployment_query_from_proto,
    deployment_to_proto,
    file_exists_from_proto,
    group_to_proto,
    hook_line_to_proto,
    next_token,
    target_to_proto,
)
from services.orchestrator.deployments import Deployments
from services.orchestrator.domain import Deployment, DeploymentRequest
from services.orchestrator.group_convert import (
    alarms_from_proto,
    auto_rollback_from_proto,
    blue_green_from_proto,
    style_from_proto,
    target_groups_from_proto,
    triggers_from_proto,
)
from services.orchestrator.group_store import GroupStore
from services.orchestrator.groups import DeploymentGroup, GroupChange
from services.orchestrator.logs import DeploymentLogs
from services.orchestrator.states import TERMINAL_DEPLOYMENT
from services.orchestrator.store import DeploymentStore

Context: TypeAlias = aio.ServicerContext[Any, Any]


MAX_TAG_SET_GROUPS = 3


def _tag_set(groups: Iterable[pb.TagFilterGroup]) -> tuple[tuple[TagFilter, ...], ...]:
    tag_set = tuple(
        tuple(_filters(f"onPremisesTagSet[{i}]", group.filters)) for i, group in enumerate(groups)
    )
    if any(not filters for filters in tag_set):
        raise InvalidArgument("onPremisesTagSet: every group needs at least one tag filter")
    if len(tag_set) > MAX_TAG_SET_GROUPS:
        raise InvalidArgument(f"onPremisesTagSet has more than {MAX_TAG_SET_GROUPS} groups")
    return tag_set


def _filters(field: str, messages: Iterable[common_pb2.TagFilter]) -> list[TagFilter]:
    return check_tag_filters(
        field, [tag_filter_from_proto(f, f"{field}[{i}]") for i, f in enumerate(messages)]
    )


def _deployment_id(value: str) -> str:
    if not value:
        raise InvalidArgument("deploymentId is required")
    if not DEPLOYMENT_ID.match(value):
        raise InvalidArgument(f"deploymentId {value[:100]!r} is not a deployment id (d-XXXXXXXXX)")
    return value


DEPLOYMENT_ID = re.compile(r"^d-[A-Z0-9]{9}\Z")
WATCH_SPACING = 4
"""A deployment watcher waits this many times as long as its last snapshot took beyond
`WATCH_FREE_SECONDS` before the next one."""
WATCH_FREE_SECONDS = 0.02
"""A snapshot this quick (a small deployment, or its summary) is taken again at the next
change without a pause: the watcher sees the end of a small deployment when it happens."""


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServicer):
    def __init__(
        self,
        groups: GroupStore,
        deployments: DeploymentStore,
        configs: ConfigStore,
        service: Deployments,
        controller: RolloutController,
        changes: ChangeSignal,
        logs: DeploymentLogs,
    ) -> None:
        self._logs = logs
        self._controller = controller
        self._configs = configs
        self._groups = groups
        self._deployments = deployments
        self._service = service
        self._changes = changes

    async def GetDeploymentConfig(
        self, request: pb.GetDeploymentConfigRequest, context: Context
    ) -> pb.GetDeploymentConfigResponse:
        name = check_name("deploymentConfigName", request.deployment_config_name)
        config = await self._configs.get(name)
        return pb.GetDeploymentConfigResponse(deployment_config_info=config_to_proto(config))

    async def ListDeploymentConfigs(
        self, request: pb.ListDeploymentConfigsRequest, context: Context
    ) -> pb.ListDeploymentConfigsResponse:
        return pb.ListDeploymentConfigsResponse(deployment_configs_list=await self._configs.names())

    async def CreateDeploymentConfig(
        self, request: pb.CreateDeploymentConfigRequest, context: Context
    ) -> pb.CreateDeploymentConfigResponse:
        name = check_name("deploymentConfigName", request.deployment_config_name)
        if request.compute_platform not in ("", "Server"):
            raise InvalidArgument("computePlatform must be Server")
        config = check_custom_config(
            config_from_proto(name, request.minimum_healthy_hosts, request.traffic_routing_config)
        )
        created = await self._configs.create(config)
        return pb.CreateDeploymentConfigResponse(deployment_config_id=created.id)

    async def DeleteDeploymentConfig(
        self, request: pb.DeleteDeploymentConfigRequest, context: Context
    ) -> pb.DeleteDeploymentConfigResponse:
        await self._configs.delete(
            check_name("deploymentConfigName", request.deployment_config_name)
        )
        return pb.DeleteDeploymentConfigResponse()

    async def CreateDeploymentGroup(
        self, request: pb.CreateDeploymentGroupRequest, context: Context
    ) -> pb.CreateDeploymentGroupResponse:
        application = check_name("applicationName", request.application_name)
        filters = _filters("onPremisesInstanceTagFilters", request.on_premises_instance_tag_filters)
        tag_set = _tag_set(request.on_premises_tag_set)
        if filters and tag_set:
            raise InvalidArgument(
                "onPremisesInstanceTagFilters and onPremisesTagSet cannot both be given"
            )
        group = DeploymentGroup(
            id="",
            application_name=application,
            name=check_name("deploymentGroupName", request.deployment_group_name),
            config_name=request.deployment_config_name or DEFAULT_CONFIG_NAME,
            tag_filters=tuple(filters),
            created_at=utcnow(),
            tag_set=tag_set,
            auto_rollback=auto_rollback_from_proto(
                request.auto_rollback_configuration, "autoRollbackConfiguration"
            ),
            triggers=triggers_from_proto(request.trigger_configurations, "triggerConfigurations"),
            fetch_through_registry=request.fetch_revisions_through_registry,
            style=style_from_proto(request.deployment_style),
            target_groups=target_groups_from_proto(request.load_balancer_info),
            blue_green=blue_green_from_proto(request.blue_green_deployment_configuration),
            alarms=alarms_from_proto(request.alarm_configuration, "alarmConfiguration"),
        ).check()
        created = await self._service.create_group(application, group)
        return pb.CreateDeploymentGroupResponse(deployment_group_id=created.id)

    async def UpdateDeploymentGroup(
        self, request: pb.UpdateDeploymentGroupRequest, context: Context
    ) -> pb.UpdateDeploymentGroupResponse:
        application = check_name("applicationName", request.application_name)
        name = check_name("currentDeploymentGroupName", request.current_deployment_group_name)
        change = GroupChange(
            new_name=(
                check_name("newDeploymentGroupName", request.new_deployment_group_name)
                if request.HasField("new_deployment_group_name")
                else None
            ),
            config_name=(
                check_name("deploymentConfigName", request.deployment_config_name)
                if request.HasField("deployment_config_name")
                else None
            ),
            tag_filters=(
                tuple(
                    _filters(
                        "onPremisesInstanceTagFilters",
                        request.on_premises_instance_tag_filters.filters,
                    )
                )
                if request.HasField("on_premises_instance_tag_filters")
                else None
            ),
            tag_set=(
                _tag_set(request.on_premises_tag_set.groups)
                if request.HasField("on_premises_tag_set")
                else None
            ),
            auto_rollback=(
                auto_rollback_from_proto(
                    request.auto_rollback_configuration, "autoRollbackConfiguration"
                )
                if request.HasField("auto_rollback_configuration")
                else None
            ),
            triggers=(
                triggers_from_proto(
                    request.trigger_configurations.triggers, "triggerConfigurations"
                )
                if request.HasField("trigger_configurations")
                else None
            ),
            fetch_through_registry=(
                request.fetch_revisions_through_registry
                if request.HasField("fetch_revisions_through_registry")
                else None
            ),
            style=(
                style_from_proto(request.deployment_style)
                if request.HasField("deployment_style")
                else None
            ),
            target_groups=(
                target_groups_from_proto(request.load_balancer_info)
                if request.HasField("load_balancer_info")
                else None
            ),
            blue_green=(
                blue_green_from_proto(request.blue_green_deployment_configuration)
                if request.HasField("blue_green_deployment_configuration")
                else None
            ),
            alarms=(
                alarms_from_proto(request.alarm_configuration, "alarmConfiguration")
                if request.HasField("alarm_configuration")
                else None
            ),
        )
        if change.tag_filters and change.tag_set:
            raise InvalidArgument(
                "onPremisesInstanceTagFilters and onPremisesTagSet cannot both be given"
            )
        await self._service.update_group(application, name, change)
        return pb.UpdateDeploymentGroupResponse()

    async def DeleteDeploymentGroup(
        self, request: pb.DeleteDeploymentGroupRequest, context: Context
    ) -> pb.DeleteDeploymentGroupResponse:
        application = check_name("applicationName", request.application_name)
        name = check_name("deploymentGroupName", request.deployment_group_name)
        await self._groups.delete(application, name)
        return pb.DeleteDeploymentGroupResponse()

    async def GetDeploymentGroup(
        self, request: pb.GetDeploymentGroupRequest, context: Context
    ) -> pb.GetDeploymentGroupResponse:
        application = check_name("applicationName", request.application_name)
        name = check_name("deploymentGroupName", request.deployment_group_name)
        record = await self._groups.record(application, name)
        return pb.GetDeploymentGroupResponse(deployment_group_info=group_to_proto(record))

    async def ListDeploymentGroups(
        self, request: pb.ListDeploymentGroupsRequest, context: Context
    ) -> pb.ListDeploymentGroupsResponse:
        application = check_name("applicationName", request.application_name)
        return pb.ListDeploymentGroupsResponse(
            application_name=application, deployment_groups=await self._groups.names(application)
        )

    async def CreateDeployment(
        self, request: pb.CreateDeploymentRequest, context: Context
    ) -> pb.CreateDeploymentResponse:
        check_text("description", request.description)
        if not request.HasField("revision"):
            raise InvalidArgument("revision is required")
        deployment_request = DeploymentRequest(
            application_name=check_name("applicationName", request.application_name),
            group_name=check_name("deploymentGroupName", request.deployment_group_name),
            revision=check_revision(revision_from_proto(request.revision)),
            config_name=request.deployment_config_name,
            description=request.description,
            file_exists_behavior=file_exists_from_proto(request.file_exists_behavior),
            ignore_application_stop_failures=request.ignore_application_stop_failures,
            auto_rollback=(
                auto_rollback_from_proto(
                    request.auto_rollback_configuration, "autoRollbackConfiguration"
                )
                if request.HasField("auto_rollback_configuration")
                else None
            ),
            update_outdated_instances_only=request.update_outdated_instances_only,
            target_instances=tuple(
                _filters("targetInstances.tagFilters", request.target_instances.tag_filters)
            ),
            alarms=(
                alarms_from_proto(
                    request.override_alarm_configuration, "overrideAlarmConfiguration"
                )
                if request.HasField("override_alarm_configuration")
                else None
            ),
        )
        deployment_id = await self._service.create_deployment(deployment_request)
        return pb.CreateDeploymentResponse(deployment_id=deployment_id)

    async def GetDeployment(
        self, request: pb.GetDeploymentRequest, context: Context
    ) -> pb.GetDeploymentResponse:
        deployment_id = _deployment_id(request.deployment_id)
        deployment, counts = await self._deployments.with_counts(deployment_id)
        return pb.GetDeploymentResponse(deployment_info=deployment_to_proto(deployment, counts))

    async def StopDeployment(
        self, request: pb.StopDeploymentRequest, context: Context
    ) -> pb.StopDeploymentResponse:
        deployment_id = _deployment_id(request.deployment_id)
        roll_back = (
            request.auto_rollback_enabled if request.HasField("auto_rollback_enabled") else None
        )
        outcome = await self._controller.stop_deployment(deployment_id, roll_back)
        return pb.StopDeploymentResponse(
            status=pb.STOP_STATUS_SUCCEEDED if outcome.stopped else pb.STOP_STATUS_PENDING,
            status_message=outcome.message,
        )

    async def ContinueDeployment(
        self, request: pb.ContinueDeploymentRequest, context: Context
    ) -> pb.ContinueDeploymentResponse:
        await self._controller.continue_deployment(
            _deployment_id(request.deployment_id),
            termination=request.deployment_wait_type == pb.DEPLOYMENT_WAIT_TYPE_TERMINATION_WAIT,
        )
        return pb.ContinueDeploymentResponse()

    async def ListDeployments(
        self, request: pb.ListDeploymentsRequest, context: Context
    ) -> pb.ListDeploymentsResponse:
        if bool(request.application_name) != bool(request.deployment_group_name):
            raise InvalidArgument(
                "applicationName and deploymentGroupName must be given together, or neither"
            )
        group_id = None
        if request.application_name:
            group = await self._groups.get(
                check_name("applicationName", request.application_name),
                check_name("deploymentGroupName", request.deployment_group_name),
            )
            group_id = group.id
        query = deployment_query_from_proto(request, group_id)
        page = await self._deployments.page(query)
        token = next_token(page[-1]) if len(page) == query.limit else ""
        return pb.ListDeploymentsResponse(deployments=[i for _, i in page], next_token=token)

    async def ListDeploymentTargets(
        self, request: pb.ListDeploymentTargetsRequest, context: Context
    ) -> pb.ListDeploymentTargetsResponse:
        targets = await self._deployments.targets(
            _deployment_id(request.deployment_id), with_events=False
        )
        return pb.ListDeploymentTargetsResponse(target_ids=[t.instance_name for t in targets])

    async def GetDeploymentTarget(
        self, request: pb.GetDeploymentTargetRequest, context: Context
    ) -> pb.GetDeploymentTargetResponse:
        deployment_id = _deployment_id(request.deployment_id)
        instance = check_instance_name("targetId", request.target_id)
        target = await self._deployments.target(deployment_id, instance)
        return pb.GetDeploymentTargetResponse(instance_target=target_to_proto(target))

    async def WatchDeployment(
        self, request: pb.WatchDeploymentRequest, context: Context
    ) -> AsyncIterator[pb.WatchDeploymentResponse]:
        deployment_id = _deployment_id(request.deployment_id)
        last = b""
        while True:
            wake = self._changes.current()
            began = time.monotonic()
            deployment, response = await self._watched(deployment_id, request.summary_only)
            encoded = response.SerializeToString(deterministic=True)
            if encoded != last:
                last = encoded
                yield response
            if deployment.status in TERMINAL_DEPLOYMENT or self._changes.closed:
                return
            # A snapshot costs as much as the deployment is big, and a big one changes many
            # times a second: the changes that come meanwhile are taken together, so that a
            # watcher spends at most about a fifth of the time reading.
            spent = time.monotonic() - began
            if spent > WATCH_FREE_SECONDS:
                await asyncio.sleep((spent - WATCH_FREE_SECONDS) * WATCH_SPACING)
            await wake.wait()

    async def _watched(
        self, deployment_id: str, summary_only: bool
    ) -> tuple[Deployment, pb.WatchDeploymentResponse]:
        """What a watcher sees now: the deployment, and its targets unless `summary_only` (its
        overview is counted by the database then, not from a thousand rows)."""
        if summary_only:
            deployment, counts = await self._deployments.with_counts(deployment_id)
            return deployment, pb.WatchDeploymentResponse(
                deployment_info=deployment_to_proto(deployment, counts)
            )
        deployment, targets = await self._deployments.with_targets(deployment_id)
        return deployment, pb.WatchDeploymentResponse(
            deployment_info=deployment_to_proto(deployment, Counter(t.status for t in targets)),
            instance_targets=[target_to_proto(t) for t in targets],
        )

    async def WatchDeploymentLogs(
        self, request: pb.WatchDeploymentLogsRequest, context: Context
    ) -> AsyncIterator[pb.WatchDeploymentLogsResponse]:
        deployment_id = _deployment_id(request.deployment_id)
        target = check_instance_name("targetId", request.target_id) if request.target_id else None
        async for batch in self._logs.watch(deployment_id, target, request.follow):
            if batch:
                yield pb.WatchDeploymentLogsResponse(lines=[hook_line_to_proto(h) for h in batch])
