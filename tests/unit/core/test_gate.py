"""The gate's decisions, with an authority in memory: who a call proves to be, and whether the
rule of its method lets them make it."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from deploy import certproof, signing
from deploy.v1 import fleet_pb2, orchestrator_pb2
from services.core.access import AuditEntry, Gate, Principal
from services.core.errors import PermissionDenied, Unauthenticated
from services.core.pki import service_identity


def now() -> datetime.datetime:
    """The clock, read when used (a module constant would be stale by the time a long suite
    reaches these tests, older than the certificates they issue)."""
    return datetime.datetime.now(datetime.UTC)


DEPLOY_A = json.dumps(
    {
        "Statement": {
            "Effect": "Allow",
            "Action": "deploy:CreateDeployment",
            "Resource": "arn:opendeploy:deploy::deploymentgroup:A/*",
        }
    }
)


class Authority:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def principal(self, access_key_id: str, day: str) -> Principal | None:
        if access_key_id != "ODAKDEPLOYER":
            return None
        return Principal("deployer", access_key_id, signing.signing_key("s3cret", day), (DEPLOY_A,))

    async def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    authority = service_identity(tmp_path / "pki", ("orchestrator",)).authority
    return Gate(Authority(), authority, locate_deployment=None, now=now)


def signed(method: str, request: Any, key_id: str = "ODAKDEPLOYER") -> dict[str, str | bytes]:
    return dict(signing.sign(key_id, "s3cret", method, signing.message_hash(request), now()))


def proved(
    tmp_path: Path, services: tuple[str, ...], method: str, request: Any
) -> dict[str, str | bytes]:
    identity = service_identity(tmp_path / "pki", services)
    body = signing.message_hash(request)
    return dict(certproof.prove(identity.key, identity.certificate_der, method, body, now()))


CREATE = "/deploy.v1.Orchestrator/CreateDeployment"
DISPATCH = "/deploy.v1.Fleet/DispatchCommand"


def test_a_signed_call_is_allowed_on_the_resources_its_policies_name(gate: Gate) -> None:
    mine = orchestrator_pb2.CreateDeploymentRequest(application_name="A", deployment_group_name="g")
    theirs = orchestrator_pb2.CreateDeploymentRequest(
        application_name="B", deployment_group_name="g"
    )
    admitted = asyncio.run(gate.admit(CREATE, mine, signed(CREATE, mine)))
    assert admitted.principal is not None and admitted.refused is None
    refused = asyncio.run(gate.admit(CREATE, theirs, signed(CREATE, theirs))).refused
    assert isinstance(refused, PermissionDenied) and "deploymentgroup:B/g" in str(refused)


def test_unknown_keys_changed_requests_and_missing_credentials_are_unauthenticated(
    gate: Gate,
) -> None:
    request = orchestrator_pb2.CreateDeploymentRequest(application_name="A")
    other = orchestrator_pb2.CreateDeploymentRequest(application_name="A", description="x")
    for body, metadata in (
        (request, signed(CREATE, request, key_id="ODAKNOBODY")),
        (other, signed(CREATE, request)),
        (request, {}),
    ):
        with pytest.raises(Unauthenticated):
            asyncio.run(gate.admit(CREATE, body, metadata))


def test_internal_methods_answer_only_their_services(gate: Gate, tmp_path: Path) -> None:
    request = fleet_pb2.DispatchCommandRequest(instance_name="web-1")
    ok = asyncio.run(
        gate.admit(DISPATCH, request, proved(tmp_path, ("orchestrator",), DISPATCH, request))
    )
    assert ok.services == {"orchestrator"} and ok.refused is None
    traffic = asyncio.run(
        gate.admit(DISPATCH, request, proved(tmp_path, ("traffic",), DISPATCH, request))
    )
    assert isinstance(traffic.refused, PermissionDenied)
    user = asyncio.run(gate.admit(DISPATCH, request, signed(DISPATCH, request)))
    assert isinstance(user.refused, PermissionDenied) and "not user deployer" in str(user.refused)


def test_agent_methods_need_an_agent_certificate(gate: Gate) -> None:
    with pytest.raises(Unauthenticated, match="enrol with a join token"):
        asyncio.run(gate.admit("/deploy.v1.AgentGateway/Connect", None, {}))
    enrol = fleet_pb2.EnrollRequest(join_token="odjt_x")
    assert asyncio.run(gate.admit("/deploy.v1.Fleet/Enroll", enrol, {})).refused is None


def test_a_mutating_call_is_audited_with_its_result(gate: Gate) -> None:
    request = orchestrator_pb2.CreateDeploymentRequest(
        application_name="B", deployment_group_name="g"
    )
    admission = asyncio.run(gate.admit(CREATE, request, signed(CREATE, request)))
    asyncio.run(gate.audit(admission, "PERMISSION_DENIED", "ipv4:10.0.0.1:5"))
    authority = gate._authority
    assert isinstance(authority, Authority)
    assert [(e.user_name, e.action, e.result, e.source_address) for e in authority.entries] == [
        ("deployer", "deploy:CreateDeployment", "PERMISSION_DENIED", "ipv4:10.0.0.1:5")
    ]
