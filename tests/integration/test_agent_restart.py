"""An agent killed mid-hook reports that event Failed after its restart and never re-runs it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.agents import start_agent, wait_online
from tests.harness import cli, start_server
from tests.processes import BIN, spawn, wait_until


def blocking_bundle(root: Path, gate: Path, runs: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts/start.sh"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\ncat {gate} >/dev/null\n")
    script.chmod(0o755)
    (root / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n"
        "    - location: scripts/start.sh\n      timeout: 60\n"
    )
    return root


def test_agent_restart_mid_hook_fails_the_event_without_rerunning_it(tmp_path: Path) -> None:
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    os.mkfifo(gate)
    server, address = start_server(tmp_path, "")
    agent = start_agent(tmp_path, address, "restart-1", {"cluster": "restart"})
    try:
        wait_online(address, [agent.name])
        cli(address, "create-application", "--application-name", "r")
        cli(
            address,
            "create-deployment-group",
            "--application-name",
            "r",
            "--deployment-group-name",
            "g",
            "--on-premises-instance-tag-filters",
            "Key=cluster,Value=restart,Type=KEY_AND_VALUE",
        )
        digest = cli(
            address,
            "push",
            "--application-name",
            "r",
            "--source",
            str(blocking_bundle(tmp_path / "b", gate, runs)),
        ).json()["revision"]["registryLocation"]["digest"]
        deployment_id = cli(
            address,
            "create-deployment",
            "--application-name",
            "r",
            "--deployment-group-name",
            "g",
            "--registry-location",
            f"digest={digest},bundleType=zip",
        ).json()["deploymentId"]
        wait_until(runs.exists, 30, "the ApplicationStart hook to start")

        assert agent.process is not None
        os.killpg(agent.process.popen.pid, 9)  # the agent and its hook, as a host crash would
        agent.process.popen.wait(5)
        agent.process = spawn(
            agent.name,
            [str(BIN / "deploy-agent"), "--config", str(agent.config)],
            agent.config.parent / "agent.log",
        )

        waited = cli(address, "wait", "deployment-successful", "--deployment-id", deployment_id)
        assert waited.returncode != 0
        target = cli(
            address,
            "get-deployment-target",
            "--deployment-id",
            deployment_id,
            "--target-id",
            agent.name,
        ).json()["deploymentTarget"]["instanceTarget"]
        start = next(
            e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == "ApplicationStart"
        )
        assert start["status"] == "Failed"
        assert "after an agent restart" in start["diagnostics"]["message"]
        assert runs.read_text() == "run\n"  # it ran once, before the crash, and never again
    finally:
        if agent.process:
            agent.process.stop()
        server.stop()
        subprocess.run(["pkill", "-f", str(gate)], check=False)
