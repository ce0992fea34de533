"""A deploy-server killed with SIGKILL mid-deployment and restarted finishes what it started;
meanwhile the group refuses a second deployment."""

from __future__ import annotations

import os
from pathlib import Path

from tests.agents import start_agent, wait_online
from tests.cluster import cluster, gate_script, open_gate
from tests.harness import CliResult, cli, start_server
from tests.integration.apps import App, bundle, installed
from tests.processes import wait_until


def gated_bundle(root: Path, gate: Path, started: Path) -> Path:
    """BeforeInstall announces itself, then blocks reading a FIFO until the test opens it."""
    (root / "app").mkdir(parents=True)
    (root / "app/f.txt").write_text("f\n")
    (root / "scripts").mkdir()
    script = root / "scripts/before.sh"
    script.write_text(f'#!/bin/sh\necho "$DEPLOYMENT_ID" >> {started}\n{gate_script(gate)}')
    script.chmod(0o755)
    (root / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/gated\n"
        "hooks:\n  BeforeInstall:\n    - location: scripts/before.sh\n      timeout: 60\n"
    )
    return root


def release_when_started(gate: Path, started: Path, count: int) -> None:
    """Wait until `count` hooks have started in all, then open the FIFO to release them."""
    wait_until(
        lambda: started.exists() and len(started.read_text().split()) == count,
        30,
        f"{count} BeforeInstall hooks to have started",
    )
    open_gate(gate, count)


def test_killed_server_resumes_deployments_after_restart(tmp_path: Path, database_url: str) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    server, address = start_server(tmp_path, database_url)
    agents = [start_agent(tmp_path, address, f"dur-{i}", {"cluster": "dur"}) for i in (1, 2)]

    def run(*args: str) -> CliResult:
        result = cli(address, *args)
        assert result.returncode == 0, result.stderr
        return result

    try:
        wait_online(address, [a.name for a in agents])
        run("create-application", "--application-name", "dur")
        run(
            "create-deployment-group",
            "--application-name",
            "dur",
            "--deployment-group-name",
            "g",
            "--on-premises-instance-tag-filters",
            "Key=cluster,Value=dur,Type=KEY_AND_VALUE",
        )
        source = gated_bundle(tmp_path / "bundle", gate, started)
        pushed = run("push", "--application-name", "dur", "--source", str(source)).json()
        location = f"digest={pushed['revision']['registryLocation']['digest']},bundleType=zip"
        create = (
            "create-deployment",
            "--application-name",
            "dur",
            "--deployment-group-name",
            "g",
            "--deployment-config-name",
            "CodeDeployDefault.AllAtOnce",
            "--registry-location",
            location,
        )
        first = run(*create).json()["deploymentId"]
        wait_until(
            lambda: started.exists() and len(started.read_text().split()) == 2,
            30,
            "both BeforeInstall hooks of the first deployment to start",
        )
        refused = cli(address, *create)  # one deployment at a time per group
        assert refused.returncode != 0
        assert "FAILED_PRECONDITION" in refused.stderr and first in refused.stderr

        server.kill()  # SIGKILL: no graceful shutdown
        server, _ = start_server(tmp_path, database_url, port=int(address.rsplit(":", 1)[1]))
        wait_online(address, [a.name for a in agents])
        release_when_started(gate, started, 2)
        run("wait", "deployment-successful", "--deployment-id", first)

        second = run(*create).json()["deploymentId"]  # the group is free again
        release_when_started(gate, started, 4)
        for deployment_id in (first, second):
            run("wait", "deployment-successful", "--deployment-id", deployment_id)
            info = run("get-deployment", "--deployment-id", deployment_id).json()
            assert info["deploymentInfo"]["deploymentOverview"]["Succeeded"] == 2
        assert started.read_text().split() == [first, first, second, second]
        for agent in agents:
            assert (agent.prefix / "opt/gated/f.txt").read_text() == "f\n"
    finally:
        for agent in agents:
            if agent.process:
                agent.process.stop()
        server.stop()


def test_a_stop_request_survives_a_killed_server_and_its_rollback_runs(
    tmp_path: Path, database_url: str
) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    (tmp_path / "cluster").mkdir()
    with cluster(tmp_path / "cluster", database_url, 2, "stopdur") as running:
        app = App(running)
        good = app.push(bundle(tmp_path / "v1", "1", app.dest))
        app.finished(app.deploy(good, "CodeDeployDefault.AllAtOnce"), "Succeeded")
        gated = bundle(tmp_path / "v2", "2", app.dest, gate=gate, started=started)
        deployment_id = app.deploy(app.push(gated), "CodeDeployDefault.AllAtOnce")
        wait_until(
            lambda: started.exists() and len(started.read_text().split()) == 2,
            60,
            "both BeforeInstall hooks to start",
        )
        assert (
            app.ok("stop-deployment", "--deployment-id", deployment_id, "--auto-rollback-enabled")[
                "status"
            ]
            == "Pending"
        )

        running.server.kill()  # SIGKILL while the stop waits for the hooks
        port = int(running.address.rsplit(":", 1)[1])
        running.server, _ = start_server(tmp_path / "cluster", database_url, port=port)
        wait_online(running.address, [a.name for a in running.agents])
        info = app.finished(deployment_id, "Stopped")  # the hooks are killed, never released
        rollback = app.finished(info["rollbackInfo"]["rollbackDeploymentId"], "Succeeded")
        assert rollback["revision"]["registryLocation"]["digest"] == good
        assert installed(app) == ["1", "1"]
