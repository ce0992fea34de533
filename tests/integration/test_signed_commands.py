"""Signed commands: a real agent, enrolled with a real server (`auth: true`), then connected to
a hostile gateway — a compromised fleet process or a man in the middle — runs the command the
orchestrator's key signed for it and refuses, running nothing, every unsigned, altered or
misaddressed one."""

from __future__ import annotations

import datetime
import queue
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from deploy import commandsig
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2
from services.core.pki import command_signing_key
from tests.agents import register, start_agent
from tests.cluster import Cluster, cluster
from tests.processes import BIN, wait_until

NAME = "signed-1"


class HostileGateway(agent_pb2_grpc.AgentGatewayServicer):
    """Speaks the agent protocol and sends whatever commands it was given."""

    def __init__(self, commands: list[agent_pb2.LifecycleCommand]) -> None:
        self.commands = commands
        self.received: queue.Queue[agent_pb2.ConnectRequest] = queue.Queue()

    def Connect(
        self, request_iterator: Iterator[agent_pb2.ConnectRequest], context: Any
    ) -> Iterator[agent_pb2.ConnectResponse]:
        hello = next(request_iterator).hello
        welcome = agent_pb2.Welcome(instance_name=hello.instance_name, heartbeat_interval_seconds=5)
        yield agent_pb2.ConnectResponse(welcome=welcome)
        for command in self.commands:
            yield agent_pb2.ConnectResponse(command=command)
        for message in request_iterator:
            self.received.put(message)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("signed"), "", 0, "signed") as started:
        yield started


def enrolled_root(running: Cluster) -> None:
    """Enrol NAME with the real fleet, as `deploy-agent enroll` does on a new host."""
    token = register(running.address, NAME, {"cluster": "signed"})
    home = running.workdir / NAME
    home.mkdir()
    config = home / "enroll.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": running.address,
                "ca_file": str(running.ca_file),
                "instance_name": NAME,
                "root_dir": str(home / "root"),
            }
        )
    )
    done = subprocess.run(
        [str(BIN / "deploy-agent"), "enroll", "--config", str(config), "--token", token],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (home / "root" / "identity" / "command.pub").exists()


def command(command_id: str, event: str = "ApplicationStop") -> agent_pb2.LifecycleCommand:
    return agent_pb2.LifecycleCommand(
        command_id=command_id,
        lifecycle_event=event,
        spec=agent_pb2.DeploymentSpec(
            deployment_id="d-SIGNED",
            application_name="app",
            deployment_group_name="g",
            deployment_group_id="dg-1",
            revision=common_pb2.RevisionLocation(),
            lifecycle_events=[event],
        ),
    )


def test_an_agent_runs_only_commands_signed_for_it(running: Cluster) -> None:
    enrolled_root(running)
    key = command_signing_key(running.workdir / "data" / "pki")  # the orchestrator's
    now = datetime.datetime.now(datetime.UTC)

    genuine = command("genuine")
    commandsig.sign(key, NAME, genuine, now)
    unsigned = command("unsigned")
    altered = command("altered")
    commandsig.sign(key, NAME, altered, now)
    altered.lifecycle_event = "ApplicationStart"  # a different event than was signed
    elsewhere = command("elsewhere")
    commandsig.sign(key, "another-host", elsewhere, now)
    refused = {"unsigned", "altered", "elsewhere"}

    gateway = HostileGateway([unsigned, altered, elsewhere, genuine])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    agent_pb2_grpc.add_AgentGatewayServicer_to_server(gateway, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    hostile = f"127.0.0.1:{port}"
    agent = start_agent(running.workdir, hostile, NAME, {}, config={"server": f"http://{hostile}"})
    try:
        started: set[str] = set()
        finished: dict[str, agent_pb2.CommandFinished] = {}

        def every_command_answered() -> bool:
            while not gateway.received.empty():
                message = gateway.received.get_nowait()
                if message.HasField("started"):
                    started.add(message.started.command_id)
                elif message.HasField("finished"):
                    finished[message.finished.command_id] = message.finished
            return set(finished) == refused | {"genuine"}

        wait_until(every_command_answered, 60, "the agent to answer every command")
    finally:
        assert agent.process is not None
        agent.process.stop()
        server.stop(0)

    assert started == {"genuine"}  # nothing of the others ran, not even their start
    assert finished["genuine"].status == common_pb2.LIFECYCLE_EVENT_STATUS_SUCCEEDED
    for command_id in refused:
        report = finished[command_id]
        assert report.status == common_pb2.LIFECYCLE_EVENT_STATUS_FAILED
        assert report.diagnostics.message.startswith("Refused: the command"), report
    assert finished["unsigned"].diagnostics.message == "Refused: the command is not signed"
    assert "does not verify" in finished["altered"].diagnostics.message
    assert "signed for another instance" in finished["elsewhere"].diagnostics.message
    log = Path(agent.root.parent / "agent.log").read_text()
    assert log.count('"lifecycle command refused"') == 3
