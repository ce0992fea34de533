"""A deploy-server killed with SIGKILL mid-deployment and restarted finishes the deployment."""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness import cli, start_agent, start_server, wait_online, wait_until


def gated_bundle(root: Path, gate: Path, started: Path) -> Path:
    """BeforeInstall announces itself, then blocks reading a FIFO until the test opens it."""
    (root / "app").mkdir(parents=True)
    (root / "app/f.txt").write_text("f\n")
    (root / "scripts").mkdir()
    script = root / "scripts/before.sh"
    script.write_text(f'#!/bin/sh\necho "$DEPLOYMENT_ID" >> {started}\ncat {gate} >/dev/null\n')
    script.chmod(0o755)
    (root / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/gated\n"
        "hooks:\n  BeforeInstall:\n    - location: scripts/before.sh\n      timeout: 60\n"
    )
    return root


def test_killed_server_resumes_the_deployment_after_restart(
    tmp_path: Path, database_url: str
) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    server, address = start_server(tmp_path, database_url)
    agents = [start_agent(tmp_path, address, f"dur-{i}", {"cluster": "dur"}) for i in (1, 2)]
    try:
        wait_online(address, [a.name for a in agents])
        assert cli(address, "create-application", "--application-name", "dur").returncode == 0
        assert (
            cli(
                address,
                "create-deployment-group",
                "--application-name",
                "dur",
                "--deployment-group-name",
                "g",
                "--on-premises-instance-tag-filters",
                "Key=cluster,Value=dur,Type=KEY_AND_VALUE",
            ).returncode
            == 0
        )
        pushed = cli(
            address,
            "push",
            "--application-name",
            "dur",
            "--source",
            str(gated_bundle(tmp_path / "bundle", gate, started)),
        ).json()
        digest = pushed["revision"]["registryLocation"]["digest"]
        created = cli(
            address,
            "create-deployment",
            "--application-name",
            "dur",
            "--deployment-group-name",
            "g",
            "--deployment-config-name",
            "CodeDeployDefault.AllAtOnce",
            "--registry-location",
            f"digest={digest},bundleType=zip",
        )
        deployment_id = created.json()["deploymentId"]
        wait_until(
            lambda: started.exists() and len(started.read_text().split()) == 2,
            30,
            "both BeforeInstall hooks to start",
        )

        server.kill()  # SIGKILL: no graceful shutdown
        server, _ = start_server(tmp_path, database_url, port=int(address.rsplit(":", 1)[1]))
        wait_online(address, [a.name for a in agents])
        with gate.open("w"):  # releases both blocked hooks
            pass

        waited = cli(address, "wait", "deployment-successful", "--deployment-id", deployment_id)
        assert waited.returncode == 0, waited.stderr
        info = cli(address, "get-deployment", "--deployment-id", deployment_id).json()
        assert info["deploymentInfo"]["deploymentOverview"]["Succeeded"] == 2
        for agent in agents:
            assert (agent.prefix / "opt/gated/f.txt").read_text() == "f\n"
    finally:
        for agent in agents:
            if agent.process:
                agent.process.stop()
        server.stop()
