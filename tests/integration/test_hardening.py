"""Hostile input against real processes: what a request, a bundle or an agent message can do is
bounded, and what lands on a host or in the data directory is private and never more than asked.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy import commandsig
from deploy.client import DeployClient
from deploy.errors import ApiError
from deploy.v1 import agent_pb2, common_pb2, fleet_pb2, registry_pb2
from services.core.pki import command_signing_key
from tests.agents import refused_hello
from tests.archives import zip_bomb
from tests.cluster import Cluster, cluster
from tests.harness import channel_to, client_of, start_server, unique
from tests.integration.apps import App
from tests.processes import Process, wait_until


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    env = {"OPENDEPLOY_MAX_BUNDLE_BYTES": str(32 << 20)}
    with cluster(workdir, database_url, 1, "hard", env=env) as running:
        yield running


def rss_bytes(process: Process) -> int:
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_hello_with_60000_tags_is_refused_and_changes_nothing(running: Cluster) -> None:
    agent = running.agents[0]
    hello = agent_pb2.AgentHello(
        instance_name=agent.name,
        tags=[common_pb2.Tag(key=f"k{i}", value="v") for i in range(60_000)],
    )
    error = refused_hello(running.address, agent, hello)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 50 tags" in (error.details() or "")
    with client_of(running.address) as client:
        info = client.call(
            client.fleet.GetOnPremisesInstance,
            fleet_pb2.GetOnPremisesInstanceRequest(instance_name=agent.name),
        ).instance_info
    assert {(t.key, t.value) for t in info.tags} == {("cluster", "hard"), ("name", agent.name)}
    assert info.health == fleet_pb2.INSTANCE_HEALTH_ONLINE  # the agent's own stream stayed
    assert rss_bytes(running.server) < 400 << 20


def upload(client: DeployClient, path: Path) -> str:
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    client.upload_bundle(path, digest)
    return digest


def test_a_10_gb_zip_bomb_is_refused_by_the_registry_without_exhausting_memory(
    running: Cluster, tmp_path: Path
) -> None:
    bomb = zip_bomb(tmp_path / "bomb.zip", 10 << 30)
    app = App(running)
    with client_of(running.address) as client:
        digest = upload(client, bomb)
        with pytest.raises(ApiError) as error:
            client.call(
                client.registry.RegisterApplicationRevision,
                registry_pb2.RegisterApplicationRevisionRequest(
                    application_name=app.name,
                    revision=common_pb2.RevisionLocation(
                        revision_type=common_pb2.REVISION_TYPE_REGISTRY,
                        registry_location=common_pb2.RegistryLocation(
                            digest=digest, bundle_type=common_pb2.BUNDLE_TYPE_ZIP
                        ),
                    ),
                ),
            )
    assert error.value.code == "INVALID_ARGUMENT"
    assert "archive bomb" in str(error.value)
    assert "max_unpacked_bytes" in str(error.value)
    assert rss_bytes(running.server) < 400 << 20


def test_an_upload_over_the_size_limit_is_refused_naming_it(
    running: Cluster, tmp_path: Path
) -> None:
    big = tmp_path / "big.zip"
    with big.open("wb") as handle:
        handle.write(os.urandom(33 << 20))
    with client_of(running.address) as client, pytest.raises(ApiError) as error:
        upload(client, big)
    assert error.value.code == "RESOURCE_EXHAUSTED"
    assert "max_bundle_bytes" in str(error.value)
    assert list((running.workdir / "data/bundles/tmp").iterdir()) == []


def test_data_directories_and_files_are_private(running: Cluster) -> None:
    data = running.workdir / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for database in data.glob("*.db"):
        assert stat.S_IMODE(database.stat().st_mode) == 0o600, database
    for directory in (data / "bundles", data / "bundles/sha256"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_a_setuid_world_writable_file_installs_as_0755_in_private_directories(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    source = tmp_path / "setuid.zip"
    with zipfile.ZipFile(source, "w") as archive:
        lines = [
            "version: 0.0",
            "os: linux",
            "files:",
            "  - source: bin",
            f"    destination: {app.dest}",
        ]
        archive.writestr("appspec.yml", "\n".join(lines) + "\n")
        tool = zipfile.ZipInfo("bin/tool")
        tool.external_attr = (stat.S_IFREG | 0o4777) << 16
        archive.writestr(tool, "#!/bin/sh\n")
    with client_of(running.address) as client:
        digest = upload(client, source)
    app.finished(app.deploy(digest, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    agent = running.agents[0]
    installed = agent.prefix / app.dest.lstrip("/") / "tool"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    assert stat.S_IMODE(agent.root.stat().st_mode) == 0o700
    for deployment_dir in agent.root.glob("*/d-*"):
        assert stat.S_IMODE(deployment_dir.stat().st_mode) == 0o700, deployment_dir
        assert stat.S_IMODE(deployment_dir.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("group_id", "deployment_id", "message"),
    [
        ("..", "d-ABCDEFGHI", "is not a group id"),
        ("/", "d-ABCDEFGHI", "is not a group id"),
        ("bundle-cache", "d-ABCDEFGHI", "is not a group id"),
        ("g1", "../../..", "is not a deployment id"),
    ],
)
def test_a_command_whose_ids_are_not_ids_touches_no_directory(
    running: Cluster, group_id: str, deployment_id: str, message: str
) -> None:
    """Sent by a compromised orchestrator (its service certificate, its command key): the
    agent checks the spec's path components before they name a directory."""
    agent = running.agents[0]
    sentinel = agent.root.parent / "sentinel"
    sentinel.write_text("still here")
    before = sorted(p.name for p in agent.root.iterdir())
    command_id = f"{unique('hostile')}:0:DownloadBundle"
    command = agent_pb2.LifecycleCommand(
        command_id=command_id,
        lifecycle_event="DownloadBundle",
        spec=agent_pb2.DeploymentSpec(
            deployment_id=deployment_id, deployment_group_id=group_id, lifecycle_events=["x"]
        ),
    )
    commandsig.sign(command_signing_key(running.pki_dir), agent.name, command, datetime.now(UTC))
    dispatch = fleet_pb2.DispatchCommandRequest(instance_name=agent.name, command=command)
    with client_of(running.address, service="orchestrator") as orchestrator:
        orchestrator.call(orchestrator.fleet.DispatchCommand, dispatch)
    log = agent.process.log if agent.process else None
    assert log is not None
    wait_until(lambda: command_id in log.read_text(), 30, "the agent to report the command")
    wait_until(lambda: message in log.read_text(), 30, f"the agent to refuse it ({message})")
    assert sentinel.read_text() == "still here"
    assert sorted(p.name for p in agent.root.iterdir()) == before


def test_a_batch_of_dispatches_is_checked_whole_and_refuses_an_unknown_instance_alone(
    running: Cluster,
) -> None:
    """DispatchCommands (the orchestrator's wave of hosts in one call): a malformed dispatch
    refuses the whole call, naming its field; an instance that is not registered is refused
    alone, and the others' commands reach their agents."""
    agent = running.agents[0]

    def dispatch(instance: str, command_id: str) -> fleet_pb2.DispatchCommandRequest:
        command = agent_pb2.LifecycleCommand(
            command_id=command_id,
            lifecycle_event="DownloadBundle",
            spec=agent_pb2.DeploymentSpec(
                deployment_id="d-ABCDEFGHI", deployment_group_id="..", lifecycle_events=["x"]
            ),
        )
        key = command_signing_key(running.pki_dir)
        commandsig.sign(key, instance, command, datetime.now(UTC))
        return fleet_pb2.DispatchCommandRequest(instance_name=instance, command=command)

    delivered = f"{unique('batch')}:0:DownloadBundle"
    refused_whole = f"{delivered}-never"
    with client_of(running.address, service="orchestrator") as orchestrator:
        with pytest.raises(ApiError) as malformed:
            orchestrator.call(
                orchestrator.fleet.DispatchCommands,
                fleet_pb2.DispatchCommandsRequest(
                    dispatches=[dispatch(agent.name, refused_whole), dispatch("nobody", "")]
                ),
            )
        assert malformed.value.code == "INVALID_ARGUMENT"
        assert "dispatches[1].command.commandId" in malformed.value.message
        answer = orchestrator.call(
            orchestrator.fleet.DispatchCommands,
            fleet_pb2.DispatchCommandsRequest(
                dispatches=[
                    dispatch("no-such-host", f"{delivered}-x"),
                    dispatch(agent.name, delivered),
                ]
            ),
        )
    assert [(r.index, "not registered" in r.message) for r in answer.refusals] == [(0, True)]
    log = agent.process.log if agent.process else None
    assert log is not None
    wait_until(lambda: delivered in log.read_text(), 30, "the agent to receive its command")
    # pushed in order on one stream: had the malformed call stored it, it would be there first
    assert refused_whole not in log.read_text()


def test_reflection_answers_loopback(running: Cluster) -> None:
    with channel_to(running.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
        )
    names = {s.name for s in answers[0].list_services_response.service}
    assert "deploy.v1.Orchestrator" in names


def test_a_server_refuses_a_request_over_the_message_limit(tmp_path: Path) -> None:
    env = {"OPENDEPLOY_GRPC_MAX_MESSAGE_BYTES": str(64 << 10)}
    server, address = start_server(tmp_path, "", env=env)
    try:
        with client_of(address) as client, pytest.raises(ApiError) as error:
            client.call(
                client.fleet.RegisterOnPremisesInstance,
                fleet_pb2.RegisterOnPremisesInstanceRequest(
                    instance_name="big", tags=[common_pb2.Tag(key="k", value="v" * (128 << 10))]
                ),
            )
        assert error.value.code == "RESOURCE_EXHAUSTED"
    finally:
        server.stop()


def test_list_pages_are_bounded_and_the_cli_reads_them_all(running: Cluster) -> None:
    tag = unique("paged")
    names = sorted(unique("inst") for _ in range(3))
    with client_of(running.address) as client:
        for name in names:
            client.call(
                client.fleet.RegisterOnPremisesInstance,
                fleet_pb2.RegisterOnPremisesInstanceRequest(
                    instance_name=name, tags=[common_pb2.Tag(key="page", value=tag)]
                ),
            )
        request = fleet_pb2.ListOnPremisesInstancesRequest(
            tag_filters=[
                common_pb2.TagFilter(
                    key="page", value=tag, type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE
                )
            ],
            max_items=2,
        )
        first = client.call(client.fleet.ListOnPremisesInstances, request)
        assert [i.instance_name for i in first.instances] == names[:2]
        assert first.next_token
        request.next_token = first.next_token
        second = client.call(client.fleet.ListOnPremisesInstances, request)
        assert [i.instance_name for i in second.instances] == names[2:]
        assert second.next_token == ""
        request.max_items, request.next_token = 1001, ""
        with pytest.raises(ApiError) as error:
            client.call(client.fleet.ListOnPremisesInstances, request)
        assert error.value.code == "INVALID_ARGUMENT"
        assert "maxItems must be at most 1000" in str(error.value)
    listed = running.cli(
        "list-on-premises-instances", "--tag-filters", f"Key=page,Value={tag},Type=KEY_AND_VALUE"
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.json()["instanceNames"] == names
