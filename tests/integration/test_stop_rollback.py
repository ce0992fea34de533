"""Stop and roll back, on real agents: stop with and without rollback, automatic rollback on
failure, and the group's record of what its instances run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, cluster
from tests.integration.apps import App, bundle, gated, hook_processes, installed, wait_started
from tests.processes import wait_until

AGENTS = 3


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), database_url, AGENTS, "rb") as running:
        yield running


def test_failed_deployment_rolls_back_automatically_restoring_previous_files(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running, "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE")
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    first = app.deploy(good, "CodeDeployDefault.AllAtOnce")
    app.finished(first, "Succeeded")
    assert installed(app) == ["1"] * AGENTS

    bad = app.push(bundle(tmp_path / "v2", "2", app.dest, validate_exit=3, extra="new.txt"))
    failed = app.deploy(bad, "CodeDeployDefault.AllAtOnce")
    info = app.finished(failed, "Failed")
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    assert rollback_id and rollback_id != failed
    assert "rolled back by" in info["rollbackInfo"]["rollbackMessage"]

    rollback = app.finished(rollback_id, "Succeeded")
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == failed
    assert rollback["revision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS
    for agent in running.agents:
        assert not (agent.prefix / app.dest.lstrip("/") / "new.txt").exists(), agent.name

    group = app.group_info()
    assert group["targetRevision"]["registryLocation"]["digest"] == good
    assert group["lastSuccessfulDeployment"]["deploymentId"] == rollback_id
    assert group["lastAttemptedDeployment"]["deploymentId"] == rollback_id
    assert group["autoRollbackConfiguration"] == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE"],
    }


def test_failure_without_auto_rollback_stays_failed_and_keeps_target_revision(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    first = app.deploy(good, "CodeDeployDefault.AllAtOnce")
    app.finished(first, "Succeeded")
    failed = app.deploy(
        app.push(bundle(tmp_path / "v2", "2", app.dest, validate_exit=1)),
        "CodeDeployDefault.AllAtOnce",
    )
    info = app.finished(failed, "Failed")
    assert "rollbackInfo" not in info
    group = app.group_info()
    assert group["targetRevision"]["registryLocation"]["digest"] == good
    assert group["lastSuccessfulDeployment"]["deploymentId"] == first
    assert group["lastAttemptedDeployment"] == {
        "deploymentId": failed,
        "status": "Failed",
        "endTime": info["completeTime"],
        "createTime": info["createTime"],
    }


def test_stop_kills_running_hooks_at_once_and_records_revisions(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(good, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    source, gate, started = gated(app, tmp_path, "2")
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    wait_started(started, AGENTS)
    assert hook_processes(gate), "the gated hooks wait on the gate"

    stop = app.ok("stop-deployment", "--deployment-id", deployment_id)
    assert stop["status"] == "Pending"
    assert f"{AGENTS} running lifecycle event(s) are being ended" in stop["statusMessage"]
    # The hooks are never released: the agents kill them (and their children).
    info = app.finished(deployment_id, "Stopped")
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert "rollbackInfo" not in info
    assert info["deploymentOverview"]["Failed"] == AGENTS
    for agent in running.agents:
        target = app.target(deployment_id, agent.name)
        events = {e["lifecycleEventName"]: e for e in target["lifecycleEvents"]}
        assert events["BeforeInstall"]["status"] == "Failed"
        assert "the deployment was stopped" in events["BeforeInstall"]["diagnostics"]["message"]
        assert events["Install"]["status"] == events["ValidateService"]["status"] == "Skipped"
        assert target["instanceRevision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS  # Install never ran
    wait_until(lambda: not hook_processes(gate), 10, "the stopped hooks' processes to be gone")

    again = running.cli("stop-deployment", "--deployment-id", deployment_id)
    assert again.returncode == 254
    assert "already finished" in again.stderr


def test_stop_with_auto_rollback_redeploys_the_last_successful_revision(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(good, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    source, _, started = gated(app, tmp_path, "2")
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.OneAtATime")
    wait_started(started, 1)

    stop = app.ok("stop-deployment", "--deployment-id", deployment_id, "--auto-rollback-enabled")
    assert stop["status"] == "Pending"
    info = app.finished(deployment_id, "Stopped")  # the hook is killed, never released
    overview = info["deploymentOverview"]
    assert (overview["Failed"], overview["Skipped"]) == (1, AGENTS - 1)
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = app.finished(rollback_id, "Succeeded")
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert rollback["revision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS
