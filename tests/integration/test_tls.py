"""TLS with OpenDeploy's own certificate authority: a server started with it refuses plaintext
and clients that do not trust it; the CLI and agents that trust it deploy as usual."""

from __future__ import annotations

import datetime
from pathlib import Path

import grpc
import pytest

from deploy import certproof, signing
from deploy.client import DeployClient
from deploy.credentials import load_credentials
from deploy.errors import ApiError
from deploy.v1 import common_pb2, fleet_pb2
from services.core.pki import server_tls, service_identity
from tests.harness import (
    cli,
    cluster,
    free_port,
    start_agent,
    start_server,
    wait_online,
    wait_until,
)
from tests.integration.apps import App, bundle, installed


def test_a_tls_server_serves_only_clients_and_agents_that_trust_its_authority(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path / "c", "", 2, "tls", tls=True) as running:
        assert running.ca_file is not None
        assert f'"tls_ca_file": "{running.ca_file}"' in running.server.log.read_text()

        with (
            DeployClient(running.address, ca_file="") as plaintext,
            pytest.raises(ApiError) as refused,
        ):
            plaintext.instances()
        assert refused.value.code == "UNAVAILABLE"
        stranger = server_tls(tmp_path / "other-ca", "127.0.0.1:1").ca_path
        for env in ({"DEPLOY_CA_FILE": ""}, {"DEPLOY_CA_FILE": str(stranger)}):
            result = cli(running.address, "list-applications", env=env)
            assert result.returncode != 0
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        missing = cli(
            running.address, "--ca-file", str(tmp_path / "nowhere.pem"), "list-applications"
        )
        assert missing.returncode != 0
        assert "cannot read the CA file" in missing.stderr

        app = App(running)  # the CLI trusts the authority through DEPLOY_CA_FILE
        digest = app.push(bundle(tmp_path / "v1", "v1", app.dest))
        deployment = app.deploy(digest, "CodeDeployDefault.AllAtOnce")
        app.finished(deployment, "Succeeded")  # the agents reached the fleet over TLS
        assert installed(app) == ["v1", "v1"]


def test_services_in_separate_processes_share_one_authority_prove_who_they_are_over_tls(
    tmp_path: Path,
) -> None:
    """TLS and authentication with the services split over two processes: each proves its calls
    to the other with a certificate of the shared authority naming its services; the fleet
    process checks users' keys with the identity service in the other process."""
    pki = tmp_path / "pki"
    ca_file = pki / "ca.pem"
    secure = ["--tls", "--auth", "--pki-dir", str(pki)]
    fleet_port, port = free_port(), free_port()
    fleet_address, address = f"127.0.0.1:{fleet_port}", f"127.0.0.1:{port}"
    fleet, _ = start_server(
        tmp_path / "fleet",
        "",
        port=fleet_port,
        env={"OPENDEPLOY_PEER_IDENTITY": address},
        args=["--services", "fleet,registry", *secure],
        ca_file=ca_file,
    )
    orchestrator, _ = start_server(
        tmp_path / "orchestrator",
        "",
        port=port,
        env={"OPENDEPLOY_PEER_FLEET": fleet_address, "OPENDEPLOY_PEER_REGISTRY": fleet_address},
        args=["--services", "orchestrator,traffic,identity", *secure],
        ca_file=ca_file,
    )
    admin_file = tmp_path / "orchestrator" / "data" / "admin-credentials"
    wait_until(admin_file.exists, 30, "the administrator key")
    env = {"DEPLOY_CA_FILE": str(ca_file), "DEPLOY_SHARED_CREDENTIALS_FILE": str(admin_file)}
    admin = load_credentials(None, env)
    with DeployClient(fleet_address, str(ca_file), admin) as client:
        registered = client.call(
            client.fleet.RegisterOnPremisesInstance,
            fleet_pb2.RegisterOnPremisesInstanceRequest(
                instance_name="split-tls-1",
                tags=[common_pb2.Tag(key="cluster", value="split-tls")],
            ),
        )
    agent = start_agent(  # it enrols over TLS with the registration's token
        tmp_path,
        fleet_address,
        "split-tls-1",
        {"cluster": "split-tls"},
        config={"ca_file": str(ca_file), "join_token": registered.join_token},
    )
    try:
        wait_online(fleet_address, [agent.name], ca_file, admin)
        dispatch = fleet_pb2.DispatchCommandRequest(instance_name=agent.name)
        traffic = service_identity(pki, ("traffic",))  # a real service, but not the orchestrator
        proof = certproof.prove(
            traffic.key,
            traffic.certificate_der,
            "/deploy.v1.Fleet/DispatchCommand",
            signing.message_hash(dispatch),
            datetime.datetime.now(datetime.UTC),
        )
        with DeployClient(fleet_address, str(ca_file), admin) as as_admin:
            with pytest.raises(grpc.RpcError) as wrong_service:
                as_admin.fleet.DispatchCommand.with_call(dispatch, metadata=proof)
            with pytest.raises(ApiError) as as_user:
                as_admin.call(as_admin.fleet.DispatchCommand, dispatch)
        assert wrong_service.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "answers the orchestrator service(s) only" in str(wrong_service.value.details())
        assert as_user.value.code == "PERMISSION_DENIED"
        audited = cli(address, "list-audit-events", "--action", "deploy:DispatchCommand", env=env)
        events = [(e["userName"], e["result"]) for e in audited.json()["auditEvents"]]
        assert events == [("admin", "PERMISSION_DENIED")]  # sent by the fleet's process
        dest = "/opt/split-tls"
        for endpoint, *args in (
            (fleet_address, "create-application", "--application-name", "split-tls"),
            (
                address,
                "create-deployment-group",
                "--application-name",
                "split-tls",
                "--deployment-group-name",
                "g",
                "--on-premises-instance-tag-filters",
                "Key=cluster,Value=split-tls,Type=KEY_AND_VALUE",
            ),
        ):
            made = cli(endpoint, *args, env=env)
            assert made.returncode == 0, made.stderr
        source = bundle(tmp_path / "v1", "v1", dest)
        pushed = cli(
            fleet_address,
            "push",
            "--application-name",
            "split-tls",
            "--source",
            str(source),
            env=env,
        )
        assert pushed.returncode == 0, pushed.stderr
        digest = pushed.json()["revision"]["registryLocation"]["digest"]
        created = cli(
            address,
            "create-deployment",
            "--application-name",
            "split-tls",
            "--deployment-group-name",
            "g",
            "--registry-location",
            f"digest={digest},bundleType=zip",
            env=env,
        )
        assert created.returncode == 0, created.stderr
        deployment_id = created.json()["deploymentId"]
        waited = cli(
            address, "wait", "deployment-successful", "--deployment-id", deployment_id, env=env
        )
        assert waited.returncode == 0, waited.stderr  # the orchestrator dispatched over TLS
        assert (agent.prefix / dest.lstrip("/") / "version.txt").read_text().strip() == "v1"
    finally:
        if agent.process:
            agent.process.stop()
        orchestrator.stop()
        fleet.stop()
