"""Every RPC has an access rule; internal ones refuse users; actions are CodeDeploy's names."""

from __future__ import annotations

from deploy.v1 import (
    agent_pb2,
    fleet_pb2,
    identity_pb2,
    orchestrator_pb2,
    registry_pb2,
    traffic_pb2,
)
from services.core.access import RULES, Audience

MODULES = (agent_pb2, fleet_pb2, identity_pb2, orchestrator_pb2, registry_pb2, traffic_pb2)


def methods() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_every_method_has_exactly_one_rule() -> None:
    assert set(RULES) == methods()


def test_internal_methods_answer_only_the_services_that_need_them() -> None:
    internal = {m: r.callers for m, r in RULES.items() if r.audience is Audience.SERVICES}
    orchestrator = frozenset({"orchestrator"})
    peers = frozenset({"registry", "fleet", "orchestrator", "traffic"})
    assert internal == {
        "/deploy.v1.Fleet/DispatchCommand": orchestrator,
        "/deploy.v1.Fleet/DispatchCommands": orchestrator,
        "/deploy.v1.Fleet/WatchCommandUpdates": orchestrator,
        "/deploy.v1.Fleet/CancelCommands": orchestrator,
        "/deploy.v1.Fleet/WatchInstanceChanges": orchestrator,
        "/deploy.v1.Fleet/WatchCommandOutput": orchestrator,
        "/deploy.v1.TrafficRouter/AllowTraffic": orchestrator,
        "/deploy.v1.TrafficRouter/BlockTraffic": orchestrator,
        "/deploy.v1.TrafficRouter/SetWeights": orchestrator,
        "/deploy.v1.Identity/Authenticate": peers,
        "/deploy.v1.Identity/RecordAuditEvent": peers,
    }
    assert all(not r.callers for r in RULES.values() if r.audience is not Audience.SERVICES)


def test_resources_come_from_the_request() -> None:
    create = RULES["/deploy.v1.Orchestrator/CreateDeployment"]
    request = orchestrator_pb2.CreateDeploymentRequest(
        application_name="web", deployment_group_name="prod"
    )
    assert create.action == "deploy:CreateDeployment"
    assert create.resources(request) == ["arn:opendeploy:deploy::deploymentgroup:web/prod"]
    tags = RULES["/deploy.v1.Fleet/AddTagsToOnPremisesInstances"]
    assert tags.resources(
        fleet_pb2.AddTagsToOnPremisesInstancesRequest(instance_names=["a", "b"])
    ) == [
        "arn:opendeploy:deploy::instance:a",
        "arn:opendeploy:deploy::instance:b",
    ]
    assert RULES["/deploy.v1.Orchestrator/StopDeployment"].deployment_field == "deployment_id"
    assert RULES["/deploy.v1.Identity/CreateUser"].action == "iam:CreateUser"


def test_reads_are_not_audited_and_writes_are() -> None:
    assert not RULES["/deploy.v1.Orchestrator/GetDeployment"].mutating
    assert not RULES["/deploy.v1.RevisionRegistry/BatchGetApplicationRevisions"].mutating
    assert RULES["/deploy.v1.Orchestrator/StopDeployment"].mutating
    assert RULES["/deploy.v1.Identity/AttachUserPolicy"].mutating
