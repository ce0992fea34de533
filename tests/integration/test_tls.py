"""TLS with OpenDeploy's own certificate authority, on by default: a server refuses plaintext
and clients that do not trust it; the CLI and agents that trust it deploy as usual."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from deploy.client import DeployClient
from deploy.errors import ApiError
from deploy.v1 import fleet_pb2
from services.core.pki import server_tls
from tests.agents import start_agent, wait_online
from tests.cluster import cluster
from tests.harness import cli, client_of, service_proof, split_servers
from tests.integration.apps import App, bundle, installed


def test_a_server_speaks_only_tls_to_clients_and_agents_that_trust_its_authority(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path / "c", "", 2, "tls") as running:  # TLS is the default
        assert running.ca_file is not None
        assert f'"tls_ca_file": "{running.ca_file}"' in running.server.log.read_text()

        for endpoint in (f"http://{running.address}", running.address):
            # plaintext, and TLS trusting only the system's roots
            with DeployClient(endpoint, ca_file="") as stranger, pytest.raises(ApiError) as refused:
                stranger.instances()
            assert refused.value.code == "UNAVAILABLE"
        other = server_tls(tmp_path / "other-ca", "127.0.0.1:1").ca_path
        for args, env in (
            ((), {"DEPLOY_CA_FILE": ""}),
            ((), {"DEPLOY_CA_FILE": str(other)}),
            (("--endpoint", f"http://{running.address}"), {}),
        ):
            result = cli(running.address, *args, "list-applications", env=env)
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
    split = split_servers(tmp_path)
    fleet_address, address = split.fleet_address, split.address
    # registered through the fleet's process, then enrolled over TLS with the token
    agent = start_agent(tmp_path, fleet_address, "split-tls-1", {"cluster": "split-tls"})
    try:
        wait_online(fleet_address, [agent.name])
        dispatch = fleet_pb2.DispatchCommandRequest(instance_name=agent.name)
        # a real service, but not the orchestrator
        proof = service_proof(
            tmp_path / "pki", "traffic", "/deploy.v1.Fleet/DispatchCommand", dispatch
        )
        with client_of(fleet_address) as as_admin:
            with pytest.raises(grpc.RpcError) as wrong_service:
                as_admin.fleet.DispatchCommand.with_call(dispatch, metadata=proof)
            with pytest.raises(ApiError) as as_user:
                as_admin.call(as_admin.fleet.DispatchCommand, dispatch)
        assert wrong_service.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "answers the orchestrator service(s) only" in str(wrong_service.value.details())
        assert as_user.value.code == "PERMISSION_DENIED"
        audited = cli(address, "list-audit-events", "--action", "deploy:DispatchCommand")
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
            made = cli(endpoint, *args)
            assert made.returncode == 0, made.stderr
        source = bundle(tmp_path / "v1", "v1", dest)
        pushed = cli(
            fleet_address,
            "push",
            "--application-name",
            "split-tls",
            "--source",
            str(source),
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
        )
        assert created.returncode == 0, created.stderr
        deployment_id = created.json()["deploymentId"]
        waited = cli(address, "wait", "deployment-successful", "--deployment-id", deployment_id)
        assert waited.returncode == 0, waited.stderr  # the orchestrator dispatched over TLS
        assert (agent.prefix / dest.lstrip("/") / "version.txt").read_text().strip() == "v1"
    finally:
        if agent.process:
            agent.process.stop()
        split.stop()
