"""Liveness: no dead host, silent agent, stop or restarted fleet leaves a deployment hanging.

Real deploy-server processes and agents (or simulated agents speaking the real protocol for
ones that misbehave on purpose); short heartbeats and deadlines keep the waits short."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.lifecycle import IN_PLACE_EVENTS
from tests.agents import Agent, start_agent, wait_online
from tests.cluster import cluster, open_gate
from tests.harness import cli, simulated_agents, split_servers, start_server, unique
from tests.integration.apps import App, bundle
from tests.processes import BIN, spawn, wait_until

FAST_HEARTBEAT = {"OPENDEPLOY_HEARTBEAT_INTERVAL_SECONDS": "2"}
"""Offline after three missed heartbeats: 6 s (shorter windows let a busy machine's live agents
look offline too)."""


def kill_host(agent: Agent) -> None:
    """SIGKILL the agent and its hooks, as a crashed host would end."""
    assert agent.process is not None
    os.killpg(agent.process.popen.pid, signal.SIGKILL)
    agent.process.popen.wait(5)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """A FIFO the gated hooks block on until it is opened for writing; whatever still waits
    on it is let go at the end."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    yield path
    release(path)


def release(gate: Path) -> None:
    """Let every hook still blocked on the gate go (a killed agent's hooks outlive it: they
    run in their own process groups)."""
    with contextlib.suppress(OSError):  # ENXIO: nobody is waiting
        os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))


def restart(agent: Agent) -> None:
    agent.process = spawn(
        agent.name,
        [str(BIN / "deploy-agent"), "--config", str(agent.config)],
        agent.config.parent / "agent.log",
    )


def events_of(app: App, deployment_id: str, instance: str) -> dict[str, dict[str, Any]]:
    target = app.target(deployment_id, instance)
    return {e["lifecycleEventName"]: e for e in target["lifecycleEvents"]}


def test_a_host_killed_mid_hook_fails_its_event_and_the_deployment_goes_on(
    tmp_path: Path, gate: Path
) -> None:
    started = tmp_path / "started"
    with cluster(tmp_path / "c", "", 3, "dead", env=FAST_HEARTBEAT) as running:
        app = App(running)
        deployment_id = deploy_gated(app, tmp_path, gate, started, "AfterInstall", hosts=3)
        dead = running.agents[0]
        kill_host(dead)
        wait_until(
            lambda: app.target(deployment_id, dead.name)["status"] == "Failed",
            30,
            f"{dead.name}'s target to fail once its agent is offline",
        )
        # The host ran its events one after another on its own (one chain): the first one the
        # fleet had not heard end — AfterInstall, or one before it whose report died with the
        # host — fails, and so does each it held after it (whether it ran is not known).
        failed, after = failed_and_after(events_of(app, deployment_id, dead.name))
        for event in (failed, *after):
            assert event["diagnostics"]["errorCode"] == "AgentIssue"
            assert "went offline" in event["diagnostics"]["message"]

        open_gate(gate, 2)  # the live hosts' hooks end
        info = app.finished(deployment_id, "Succeeded")  # AllAtOnce: one success suffices
        assert (info["deploymentOverview"]["Succeeded"], info["deploymentOverview"]["Failed"]) == (
            2,
            1,
        )

        # The host comes back: it reports the interrupted event, which is already decided,
        # and runs nothing again.
        restart(dead)
        wait_online(running.address, [dead.name])
        interrupted = f"{deployment_id}:{dead.name}:4:AfterInstall"
        wait_until(
            lambda: any(
                "ignored duplicate" in line and interrupted in line
                for line in running.server.log.read_text().splitlines()
            ),
            30,
            "the returning agent's report of the interrupted event",
        )
        assert sorted(started.read_text().split()) == sorted(a.name for a in running.agents)
        assert failed_and_after(events_of(app, deployment_id, dead.name))[0] == failed


def test_stop_ends_a_deployment_whose_host_is_gone_at_once(tmp_path: Path, gate: Path) -> None:
    started = tmp_path / "started"
    with cluster(tmp_path / "c", "", 2, "gone") as running:  # offline window: 15 s
        app = App(running)
        deployment_id = deploy_gated(app, tmp_path, gate, started, "BeforeInstall", hosts=2)
        gone = running.agents[0]
        kill_host(gone)
        wait_until(
            lambda: instance_health(running.address, gone.name) == "Offline",
            10,
            f"{gone.name} without a stream",
        )
        stop = app.ok("stop-deployment", "--deployment-id", deployment_id)
        assert stop["status"] == "Pending"
        info = app.finished(deployment_id, "Stopped")
        assert info["errorInformation"]["code"] == "MANUAL_STOP"
        event, _ = failed_and_after(events_of(app, deployment_id, gone.name))  # BeforeInstall
        assert event["diagnostics"]["errorCode"] == "AgentIssue"
        assert f"the agent on {gone.name} is offline" in event["diagnostics"]["message"]
        live = events_of(app, deployment_id, running.agents[1].name)["BeforeInstall"]
        assert "the deployment was stopped" in live["diagnostics"]["message"]


def failed_and_after(
    events: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first Failed event of a target (those before it all Succeeded) and the events
    after it."""
    ordered = list(events.values())
    index = [e["status"] for e in ordered].index("Failed")
    assert [e["status"] for e in ordered[:index]] == ["Succeeded"] * index
    return ordered[index], ordered[index + 1 :]


def deploy_gated(app: App, workdir: Path, gate: Path, started: Path, event: str, hosts: int) -> str:
    """An AllAtOnce deployment whose `event` hook blocks on `gate`, once it runs on `hosts`."""
    source = bundle(workdir / "v1", "1", app.dest, gate=gate, started=started, gated_event=event)
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    wait_until(
        lambda: started.exists() and len(started.read_text().split()) == hosts,
        60,
        f"{hosts} {event} hooks to start",
    )
    return deployment_id


def instance_health(address: str, name: str) -> str:
    listed = cli(address, "get-on-premises-instance", "--instance-name", name)
    return str(listed.json()["instanceInfo"].get("health", ""))


def test_an_agent_that_never_acknowledges_fails_the_event_at_its_start_deadline(
    tmp_path: Path,
) -> None:
    server, address = start_server(
        tmp_path, "", env={"OPENDEPLOY_COMMAND_ACK_TIMEOUT_SECONDS": "2"}
    )
    tag = unique("mute")
    try:
        with simulated_agents(address, [f"{tag}-1"], {"cluster": tag}, answer=False) as agents:
            wait_online(address, [f"{tag}-1"])
            deployment_id = deploy_no_op(tmp_path, address, tag)
            cli(address, "wait", "deployment-successful", "--deployment-id", deployment_id)
            info = cli(address, "get-deployment", "--deployment-id", deployment_id).json()[
                "deploymentInfo"
            ]
            assert info["status"] == "Failed"
            assert info["errorInformation"]["code"] == "TIMEOUT"
            target = cli(
                address,
                "get-deployment-target",
                "--deployment-id",
                deployment_id,
                "--target-id",
                f"{tag}-1",
            ).json()["deploymentTarget"]["instanceTarget"]
            first = target["lifecycleEvents"][0]
            assert (first["lifecycleEventName"], first["status"]) == ("ApplicationStop", "Failed")
            assert first["diagnostics"]["errorCode"] == "Timeout"
            assert "did not acknowledge" in first["diagnostics"]["message"]
            # the host's events were delivered together (one chain), none ever answered
            assert [c.split(":", 2)[2] for c in agents.received] == [
                f"{i}:{name}" for i, name in enumerate(IN_PLACE_EVENTS)
            ]
    finally:
        server.stop()


def deploy_no_op(workdir: Path, address: str, tag: str) -> str:
    """A group of the instances tagged cluster=`tag` and a deployment of a hook-less revision."""
    source = workdir / unique("noop")
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    application = unique("app")
    assert cli(address, "create-application", "--application-name", application).returncode == 0
    created = cli(
        address,
        "create-deployment-group",
        "--application-name",
        application,
        "--deployment-group-name",
        "g",
        "--on-premises-instance-tag-filters",
        f"Key=cluster,Value={tag},Type=KEY_AND_VALUE",
    )
    assert created.returncode == 0, created.stderr
    pushed = cli(address, "push", "--application-name", application, "--source", str(source))
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.json()["revision"]["registryLocation"]["digest"]
    deployment = cli(
        address,
        "create-deployment",
        "--application-name",
        application,
        "--deployment-group-name",
        "g",
        "--registry-location",
        f"digest={digest},bundleType=zip",
    )
    assert deployment.returncode == 0, deployment.stderr
    return str(deployment.json()["deploymentId"])


def test_a_restarted_fleet_gets_the_deployment_going_without_an_orchestrator_restart(
    tmp_path: Path, gate: Path
) -> None:
    """The fleet (with the registry) and the orchestrator in separate processes; the fleet is
    killed while an agent runs a hook and started again: the orchestrator reconnects, re-sends
    what is in flight, and the deployment completes."""
    started = tmp_path / "started"
    split = split_servers(tmp_path)
    fleet_address, address = split.fleet_address, split.address
    tag = unique("split")
    agents = [start_agent(tmp_path, fleet_address, f"{tag}-{i}", {"cluster": tag}) for i in (1, 2)]
    try:
        wait_online(fleet_address, [a.name for a in agents])
        application = unique("app")
        dest = f"/opt/{application}"
        source = bundle(tmp_path / "v1", "1", dest, gate=gate, started=started)
        made = cli(fleet_address, "create-application", "--application-name", application)
        assert made.returncode == 0, made.stderr
        group = cli(
            address,
            "create-deployment-group",
            "--application-name",
            application,
            "--deployment-group-name",
            "g",
            "--on-premises-instance-tag-filters",
            f"Key=cluster,Value={tag},Type=KEY_AND_VALUE",
        )
        assert group.returncode == 0, group.stderr
        pushed = cli(
            fleet_address, "push", "--application-name", application, "--source", str(source)
        )
        digest = pushed.json()["revision"]["registryLocation"]["digest"]
        created = cli(
            address,
            "create-deployment",
            "--application-name",
            application,
            "--deployment-group-name",
            "g",
            "--deployment-config-name",
            "CodeDeployDefault.OneAtATime",
            "--registry-location",
            f"digest={digest},bundleType=zip",
        )
        assert created.returncode == 0, created.stderr
        deployment_id = created.json()["deploymentId"]
        wait_until(started.exists, 60, "the first host's BeforeInstall hook to start")

        split.fleet.kill()
        wait_until(
            lambda: "fleet update stream lost" in split.orchestrator.log.read_text(),
            30,
            "the orchestrator to notice the fleet is gone",
        )
        split.start_fleet()
        wait_online(fleet_address, [a.name for a in agents])
        open_gate(gate, 1)  # the first host's hook ends; then the second host's starts
        open_gate(gate, 2)
        waited = cli(address, "wait", "deployment-successful", "--deployment-id", deployment_id)
        assert waited.returncode == 0, waited.stderr
        assert split.orchestrator.popen.poll() is None  # never restarted
    finally:
        for agent in agents:
            if agent.process:
                agent.process.stop()
        split.stop()


@pytest.mark.parametrize("streams", [300])
def test_a_server_holding_many_agent_streams_exits_within_its_grace_on_sigterm(
    tmp_path: Path, streams: int
) -> None:
    server, address = start_server(tmp_path, "")
    tag = unique("many")
    names = [f"{tag}-{i}" for i in range(streams)]
    try:
        with simulated_agents(address, names, {"cluster": tag}, answer=False):
            wait_online(address, names)
            deploy_no_op(tmp_path, address, tag)  # in flight: nobody answers
            server.popen.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                server.popen.wait(SHUTDOWN_BOUND)
                print(f"exited {time.monotonic() - sent:.1f} s after SIGTERM")
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"deploy-server did not exit within {SHUTDOWN_BOUND} s of SIGTERM"
                ) from None
    finally:
        server.kill()
    assert "deploy-server stopping" in server.log.read_text()


SHUTDOWN_BOUND = 15
"""The server's grace (10 s) and the interpreter's exit."""


def test_an_event_queued_behind_a_long_hook_is_not_failed_at_its_start_deadline(
    tmp_path: Path, gate: Path
) -> None:
    """One host in two groups: the second deployment's event waits for the first one's hook,
    longer than the start deadline — the agent tells the fleet it is queued, so it waits."""
    started = tmp_path / "started"
    env = {"OPENDEPLOY_COMMAND_ACK_TIMEOUT_SECONDS": "2"}
    with cluster(tmp_path / "c", "", 1, "shared", env=env) as running:
        first, second = App(running), App(running)
        gated = bundle(tmp_path / "v1", "1", first.dest, gate=gate, started=started)
        blocking = first.deploy(first.push(gated), "CodeDeployDefault.AllAtOnce")
        wait_until(started.exists, 60, "the first deployment's hook to start")
        waiting = second.deploy(
            second.push(bundle(tmp_path / "v2", "2", second.dest)), "CodeDeployDefault.AllAtOnce"
        )
        agent_log = running.agents[0].config.parent / "agent.log"
        wait_until(
            lambda: "queued behind the running one" in agent_log.read_text(),
            30,
            "the agent to queue the second deployment's event",
        )
        queued_at = time.monotonic()
        # Let the start deadline pass (this waits for time itself, not for a state).
        wait_until(lambda: time.monotonic() > queued_at + 4, 10, "the start deadline to pass")
        assert second.info(waiting)["status"] == "InProgress"
        open_gate(gate, 1)
        first.finished(blocking, "Succeeded")
        second.finished(waiting, "Succeeded")
