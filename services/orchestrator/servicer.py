"""Orchestrator's gRPC edge: read the request (names and ids here, anything more in
requests.py), delegate, convert the answer — no business logic here."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import orchestrator_pb2 as pb
from deploy.v1 import orchestrator_pb2_grpc
from services.core.clock import utcnow
from services.core.names import check_instance_name, check_name
from services.core.signal import ChangeSignal
from services.orchestrator.config_store import ConfigStore
from services.orchestrator.controller import RolloutController
from services.orchestrator.convert import (
    config_to_proto,
    deployment_query_from_proto,
    deployment_to_proto,
    group_to_proto,
    hook_line_to_proto,
    next_token,
    target_to_proto,
)
from services.orchestrator.deployments import Deployments
from services.orchestrator.domain import Deployment
from services.orchestrator.group_store import GroupStore
from services.orchestrator.logs import DeploymentLogs
from services.orchestrator.requests import (
    custom_config_from_proto,
    deployment_id_from_proto,
    deployment_request_from_proto,
    group_change_from_proto,
    group_from_proto,
    listed_group_from_proto,
)
from services.orchestrator.states import TERMINAL_DEPLOYMENT
from services.orchestrator.store import DeploymentStore

Context: TypeAlias = aio.ServicerContext[Any, Any]


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
        config = custom_config_from_proto(request)
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
        group = group_from_proto(request, utcnow())
        created = await self._service.create_group(group.application_name, group)
        return pb.CreateDeploymentGroupResponse(deployment_group_id=created.id)

    async def UpdateDeploymentGroup(
        self, request: pb.UpdateDeploymentGroupRequest, context: Context
    ) -> pb.UpdateDeploymentGroupResponse:
        application = check_name("applicationName", request.application_name)
        name = check_name("currentDeploymentGroupName", request.current_deployment_group_name)
        change = group_change_from_proto(request)
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
        deployment_request = deployment_request_from_proto(request)
        deployment_id = await self._service.create_deployment(deployment_request)
        return pb.CreateDeploymentResponse(deployment_id=deployment_id)

    async def GetDeployment(
        self, request: pb.GetDeploymentRequest, context: Context
    ) -> pb.GetDeploymentResponse:
        deployment_id = deployment_id_from_proto(request.deployment_id)
        deployment, counts = await self._deployments.with_counts(deployment_id)
        return pb.GetDeploymentResponse(deployment_info=deployment_to_proto(deployment, counts))

    async def StopDeployment(
        self, request: pb.StopDeploymentRequest, context: Context
    ) -> pb.StopDeploymentResponse:
        deployment_id = deployment_id_from_proto(request.deployment_id)
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
            deployment_id_from_proto(request.deployment_id),
            termination=request.deployment_wait_type == pb.DEPLOYMENT_WAIT_TYPE_TERMINATION_WAIT,
        )
        return pb.ContinueDeploymentResponse()

    async def ListDeployments(
        self, request: pb.ListDeploymentsRequest, context: Context
    ) -> pb.ListDeploymentsResponse:
        listed = listed_group_from_proto(request)
        group_id = None
        if listed is not None:
            group_id = (await self._groups.get(*listed)).id
        query = deployment_query_from_proto(request, group_id)
        page = await self._deployments.page(query)
        token = next_token(page[-1]) if len(page) == query.limit else ""
        return pb.ListDeploymentsResponse(deployments=[i for _, i in page], next_token=token)

    async def ListDeploymentTargets(
        self, request: pb.ListDeploymentTargetsRequest, context: Context
    ) -> pb.ListDeploymentTargetsResponse:
        targets = await self._deployments.targets(
            deployment_id_from_proto(request.deployment_id), with_events=False
        )
        return pb.ListDeploymentTargetsResponse(target_ids=[t.instance_name for t in targets])

    async def GetDeploymentTarget(
        self, request: pb.GetDeploymentTargetRequest, context: Context
    ) -> pb.GetDeploymentTargetResponse:
        deployment_id = deployment_id_from_proto(request.deployment_id)
        instance = check_instance_name("targetId", request.target_id)
        target = await self._deployments.target(deployment_id, instance)
        return pb.GetDeploymentTargetResponse(instance_target=target_to_proto(target))

    async def WatchDeployment(
        self, request: pb.WatchDeploymentRequest, context: Context
    ) -> AsyncIterator[pb.WatchDeploymentResponse]:
        deployment_id = deployment_id_from_proto(request.deployment_id)
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
        deployment_id = deployment_id_from_proto(request.deployment_id)
        target = check_instance_name("targetId", request.target_id) if request.target_id else None
        async for batch in self._logs.watch(deployment_id, target, request.follow):
            if batch:
                yield pb.WatchDeploymentLogsResponse(lines=[hook_line_to_proto(h) for h in batch])
