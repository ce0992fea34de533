"""Authentication and authorization on a real server (`auth: true`) with real agents: nobody
calls without a signed key, users do what their policies allow, internal RPCs refuse users, and
every mutating call is in the audit log with who made it."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import message_factory

from deploy.client import DeployClient
from deploy.credentials import Credentials, SigningInterceptor
from deploy.errors import ApiError
from deploy.v1 import (
    agent_pb2,
    fleet_pb2,
    identity_pb2,
    orchestrator_pb2,
    registry_pb2,
    traffic_pb2,
)
from deploy.v1.registry_pb2_grpc import RevisionRegistryStub
from services.core.access import RULES, Audience
from tests.agents import Agent, refused_hello, start_agent
from tests.cluster import Cluster, cluster
from tests.harness import channel_to, cli, client_of
from tests.integration.apps import App, bundle, installed
from tests.processes import wait_until

MODULES = (fleet_pb2, identity_pb2, orchestrator_pb2, registry_pb2, traffic_pb2)


CERTIFICATE_SECONDS = 20
"""The agents' certificates live 20 s here, so they renew every ~10 s during the module."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = {"OPENDEPLOY_AGENT_CERTIFICATE_SECONDS": str(CERTIFICATE_SECONDS)}
    with cluster(tmp_path_factory.mktemp("auth"), "", 2, "auth", env=env) as started:
        yield started


def user(running: Cluster, name: str, policy: str) -> dict[str, str]:
    """A user with one attached policy; the environment that makes the CLI act as them."""
    for args in (
        ("create-user", "--user-name", name),
        ("attach-user-policy", "--user-name", name, "--policy-arn", policy),
    ):
        assert running.cli(*args).returncode == 0
    key = running.cli("create-access-key", "--user-name", name).json()["accessKey"]
    assert key["status"] == "Active" and len(key["secretAccessKey"]) == 40
    return {
        "DEPLOY_ACCESS_KEY_ID": key["accessKeyId"],
        "DEPLOY_SECRET_ACCESS_KEY": key["secretAccessKey"],
    }


def as_user(running: Cluster, env: dict[str, str], *args: str) -> Any:
    return cli(running.address, *args, env={**running.env, **env})


def credentials(env: dict[str, str]) -> Credentials:
    return Credentials(env["DEPLOY_ACCESS_KEY_ID"], env["DEPLOY_SECRET_ACCESS_KEY"])


def unsigned_call(channel: grpc.Channel, path: str, method: Any) -> grpc.StatusCode:
    """Call `path` with an empty request and no credentials; the status it ends with."""
    request = message_factory.GetMessageClass(method.input_type)()
    response = message_factory.GetMessageClass(method.output_type)
    codec = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": response.FromString,
    }
    try:
        if method.client_streaming and method.server_streaming:
            next(iter(channel.stream_stream(path, **codec)(iter([request]), timeout=10)))
        elif method.client_streaming:
            channel.stream_unary(path, **codec)(iter([request]), timeout=10)
        elif method.server_streaming:
            next(iter(channel.unary_stream(path, **codec)(request, timeout=10)))
        else:
            channel.unary_unary(path, **codec)(request, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_rpc_of_every_service_refuses_a_caller_without_credentials(
    running: Cluster,
) -> None:
    answered = {}
    with channel_to(running.address, signed=False) as anonymous:
        for module in MODULES:
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    path = f"/{service.full_name}/{method.name}"
                    if RULES[path].audience is Audience.ANYONE:
                        continue  # Enroll: the join token is the credential (tested below)
                    answered[path] = unsigned_call(anonymous, path, method)
    assert len(answered) > 50
    assert {p: c for p, c in answered.items() if c != grpc.StatusCode.UNAUTHENTICATED} == {}

    refused = running.cli("--profile", "nobody", "list-applications")
    assert refused.returncode != 0 and "profile 'nobody' is not in" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    anonymous = as_user(
        running, {"DEPLOY_SHARED_CREDENTIALS_FILE": "/nonexistent"}, "list-applications"
    )
    assert anonymous.returncode != 0
    assert "(UNAUTHENTICATED)" in anonymous.stderr
    assert len(anonymous.stderr.strip().splitlines()) == 1


def test_a_wrong_secret_a_stale_signature_and_a_deleted_key_are_unauthenticated(
    running: Cluster,
) -> None:
    env = user(running, "rotating", "arn:opendeploy:iam::policy/ReadOnlyAccess")
    assert as_user(running, env, "list-applications").returncode == 0

    wrong = as_user(running, {**env, "DEPLOY_SECRET_ACCESS_KEY": "x" * 40}, "list-applications")
    assert "(UNAUTHENTICATED)" in wrong.stderr and "signature does not match" in wrong.stderr
    assert "x" * 40 not in wrong.stderr

    stale = SigningInterceptor(
        credentials(env),
        now=lambda: datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10),
    )
    with (
        grpc.intercept_channel(channel_to(running.address, signed=False), stale) as signed,
        pytest.raises(grpc.RpcError) as old,
    ):
        RevisionRegistryStub(signed).ListApplications(registry_pb2.ListApplicationsRequest())
    assert old.value.code() == grpc.StatusCode.UNAUTHENTICATED

    deleted = running.cli(
        "delete-access-key",
        "--user-name",
        "rotating",
        "--access-key-id",
        env["DEPLOY_ACCESS_KEY_ID"],
    )
    assert deleted.returncode == 0, deleted.stderr
    revoked = as_user(running, env, "list-applications")
    assert "(UNAUTHENTICATED)" in revoked.stderr and "is not valid" in revoked.stderr


def test_policies_decide_who_deploys_what_and_internal_rpcs_refuse_users(
    running: Cluster, tmp_path: Path
) -> None:
    app_a, app_b = App(running), App(running)
    digest_a = app_a.push(bundle(tmp_path / "a", "a1", app_a.dest))
    digest_b = app_b.push(bundle(tmp_path / "b", "b1", app_b.dest))

    reader = user(running, "reader", "arn:opendeploy:iam::policy/ReadOnlyAccess")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["deploy:CreateDeployment", "deploy:StopDeployment", "deploy:Get*"],
                "Resource": [
                    f"arn:opendeploy:deploy::application:{app_a.name}",
                    f"arn:opendeploy:deploy::deploymentgroup:{app_a.name}/*",
                ],
            }
        ],
    }
    created = running.cli(
        "create-policy", "--policy-name", "deploy-a", "--policy-document", json.dumps(document)
    )
    assert created.json()["policy"]["arn"] == "arn:opendeploy:iam::policy/deploy-a"
    deployer = user(running, "deployer", "arn:opendeploy:iam::policy/deploy-a")

    def deploy(env: dict[str, str], app: App, digest: str) -> Any:
        return as_user(
            running,
            env,
            "create-deployment",
            "--application-name",
            app.name,
            "--deployment-group-name",
            app.group,
            "--registry-location",
            f"digest={digest},bundleType=zip",
        )

    read_only = deploy(reader, app_a, digest_a)
    assert read_only.returncode != 0
    assert (
        "(PERMISSION_DENIED)" in read_only.stderr
        and "user reader is not allowed to deploy:CreateDeployment on "
        f"arn:opendeploy:deploy::deploymentgroup:{app_a.name}/g"
        in read_only.stderr
    )

    allowed = deploy(deployer, app_a, digest_a)
    assert allowed.returncode == 0, allowed.stderr
    deployment = allowed.json()["deploymentId"]
    app_a.finished(deployment, "Succeeded")
    assert installed(app_a) == ["a1", "a1"]
    seen = as_user(running, deployer, "get-deployment", "--deployment-id", deployment)
    assert seen.json()["deploymentInfo"]["status"] == "Succeeded"

    other = deploy(deployer, app_b, digest_b)
    assert "(PERMISSION_DENIED)" in other.stderr and app_b.name in other.stderr
    hidden = as_user(running, deployer, "get-deployment", "--deployment-id", "d-NOSUCHONE")
    assert "(PERMISSION_DENIED)" in hidden.stderr  # not NOT_FOUND: no probing other groups

    with DeployClient(running.address, str(running.ca_file), credentials(reader)) as as_reader:
        with pytest.raises(ApiError) as dispatch:
            as_reader.call(as_reader.fleet.DispatchCommand, fleet_pb2.DispatchCommandRequest())
        assert dispatch.value.code == "PERMISSION_DENIED"
        assert "for OpenDeploy's services only" in dispatch.value.message
        with pytest.raises(ApiError) as weights:
            as_reader.call(as_reader.traffic.SetWeights, traffic_pb2.SetWeightsRequest())
        assert weights.value.code == "PERMISSION_DENIED"

    def audit(name: str) -> list[tuple[str, str, str]]:
        events = running.cli("list-audit-events", "--user-name", name).json()["auditEvents"]
        assert all(e["accessKeyId"].startswith("ODAK") for e in events)
        assert all(e["sourceAddress"].startswith("ipv4:127.0.0.1:") for e in events)
        return [(e["action"], e["resource"], e["result"]) for e in events]

    group_a = f"arn:opendeploy:deploy::deploymentgroup:{app_a.name}/g"
    group_b = f"arn:opendeploy:deploy::deploymentgroup:{app_b.name}/g"
    assert audit("deployer") == [
        ("deploy:CreateDeployment", group_b, "PERMISSION_DENIED"),
        ("deploy:CreateDeployment", group_a, "OK"),
    ]
    assert audit("reader") == [
        ("deploy:SetWeights", "*", "PERMISSION_DENIED"),
        ("deploy:DispatchCommand", "*", "PERMISSION_DENIED"),
        ("deploy:CreateDeployment", group_a, "PERMISSION_DENIED"),
    ]
    admin = [a for a in audit("admin") if a[0].startswith("iam:") and "reader" in a[1]]
    assert admin == [
        ("iam:CreateAccessKey", "arn:opendeploy:iam::user/reader", "OK"),
        ("iam:AttachUserPolicy", "arn:opendeploy:iam::user/reader", "OK"),
        ("iam:CreateUser", "arn:opendeploy:iam::user/reader", "OK"),
    ]
    page = running.cli("list-audit-events", "--max-items", "2").json()
    assert len(page["auditEvents"]) == 2 and page["NextToken"]


def test_the_administrator_key_is_private_and_bad_identity_requests_name_the_field(
    running: Cluster,
) -> None:
    admin = running.workdir / "data" / "admin-credentials"
    assert admin.stat().st_mode & 0o777 == 0o600
    assert "deploy_secret_access_key" in admin.read_text()
    log = running.server.log.read_text()
    assert "administrator access key created" in log
    assert admin.read_text().split("deploy_secret_access_key = ")[1].strip() not in log

    for args, names in (
        (("create-user", "--user-name", "no spaces"), "userName"),
        (("attach-user-policy", "--user-name", "admin", "--policy-arn", "x"), "policyArn"),
        (("create-policy", "--policy-name", "p", "--policy-document", "{}"), "policyDocument"),
        (("create-user", "--user-name", "admin"), "already exists"),
        (("create-access-key", "--user-name", "ghost"), "does not exist"),
    ):
        result = running.cli(*args)
        assert result.returncode != 0 and names in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def identity_of(agent: Agent) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    pem = (agent.root / "identity" / "identity.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate(pem)


def enrol(running: Cluster, token: str, name: str = "") -> fleet_pb2.EnrollResponse:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "host")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    with client_of(running.address, signed=False) as anonymous:  # the token: the only credential
        return anonymous.call(
            anonymous.fleet.Enroll,
            fleet_pb2.EnrollRequest(
                join_token=token, instance_name=name, certificate_request=request
            ),
        )


def test_agents_are_known_by_their_certificates_and_tokens_enrol_once(running: Cluster) -> None:
    first, second = running.agents
    identity = first.root / "identity" / "identity.pem"
    assert identity.stat().st_mode & 0o777 == 0o600
    _, certificate = identity_of(first)
    assert certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:opendeploy:instance:auth-1"
    ]

    impostor = refused_hello(
        running.address, first, agent_pb2.AgentHello(instance_name=second.name)
    )
    assert impostor.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "this certificate names instance 'auth-1', not 'auth-2'" in str(impostor.details())
    with running.client() as admin:
        online = {
            i.instance_name
            for i in admin.instances()
            if i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
        }
    assert {first.name, second.name} <= online  # the real agents kept their streams

    registered = running.cli("register-on-premises-instance", "--instance-name", "spare").json()
    token = registered["joinToken"]
    assert token.startswith("odjt_") and registered["joinTokenExpiresTime"]
    enrolled = enrol(running, token)
    assert enrolled.instance_name == "spare" and "BEGIN CERTIFICATE" in enrolled.certificate
    with pytest.raises(ApiError) as again:
        enrol(running, token)
    assert again.value.code == "UNAUTHENTICATED" and "not valid" in again.value.message
    late = start_agent(running.workdir, running.address, "spare", {}, config={"join_token": token})
    try:  # an agent given the spent token says so, and never gets an identity
        log = late.root.parent / "agent.log"
        wait_until(lambda: "enrolment failed" in log.read_text(), 30, "the refused enrolment")
        assert "join token is not valid" in log.read_text()
        assert not (late.root / "identity" / "identity.pem").exists()
    finally:
        assert late.process is not None
        late.process.stop()

    created = running.cli(
        "create-join-token", "--tags", "Key=pool,Value=green", "--max-uses", "2"
    ).json()
    assert enrol(running, created["joinToken"], "green-1").instance_name == "green-1"
    with pytest.raises(ApiError) as taken:
        enrol(running, created["joinToken"], "auth-1")  # an enrolled instance's name
    assert taken.value.code == "ALREADY_EXISTS"
    green = running.cli("get-on-premises-instance", "--instance-name", "green-1").json()
    assert {"Key": "pool", "Value": "green"} in green["instanceInfo"]["tags"]

    short = running.cli("create-join-token", "--expires-in", "1").json()
    expires = datetime.datetime.fromisoformat(short["expiresTime"])
    wait_until(lambda: datetime.datetime.now(datetime.UTC) > expires, 10, "the token to expire")
    with pytest.raises(ApiError) as expired:
        enrol(running, short["joinToken"], "late-1")
    assert expired.value.code == "UNAUTHENTICATED"
    assert running.cli("get-on-premises-instance", "--instance-name", "late-1").returncode != 0


def test_certificate_renewal_keeps_a_long_running_agent_connected(running: Cluster) -> None:
    agent = running.agents[0]
    _, first = identity_of(agent)

    def renewed_and_first_expired() -> bool:
        _, current = identity_of(agent)
        now = datetime.datetime.now(datetime.UTC)
        return current.serial_number != first.serial_number and now > first.not_valid_after_utc

    wait_until(renewed_and_first_expired, 3 * CERTIFICATE_SECONDS, "a renewal past the expiry")
    _, current = identity_of(agent)
    assert current.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
    assert "certificate renewed" in (agent.root.parent / "agent.log").read_text()
    with running.client() as admin:
        info = admin.call(
            admin.fleet.GetOnPremisesInstance,
            fleet_pb2.GetOnPremisesInstanceRequest(instance_name=agent.name),
        ).instance_info
    assert info.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
    connects = [
        line
        for line in running.server.log.read_text().splitlines()
        if '"agent connected"' in line and f'"instance": "{agent.name}"' in line
    ]
    assert len(connects) == 1, connects  # one stream all along, through every renewal


def test_a_deregistered_instance_is_disconnected_and_cannot_come_back(running: Cluster) -> None:
    agent = running.agents[1]
    assert (
        running.cli("deregister-on-premises-instance", "--instance-name", agent.name).returncode
        == 0
    )

    def refused_on_reconnecting() -> bool:
        log = (agent.root.parent / "agent.log").read_text()
        return "is not registered" in log

    wait_until(refused_on_reconnecting, 30, f"{agent.name} to be refused")
    refused = refused_hello(running.address, agent, agent_pb2.AgentHello(instance_name=agent.name))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"instance '{agent.name}' is not registered" in str(refused.details())
