"""Stop and roll back, on real agents: stop with and without rollback, automatic rollback on
failure, and the group's record of what its instances run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Cluster, cluster, wait_until
from tests.integration.apps import App, bundle, installed

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


def gated(app: App, tmp_path: Path, version: str) -> tuple[Path, Path, Path]:
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    source = bundle(tmp_path / f"v{version}", version, app.dest, gate=gate, started=started)
    return source, gate, started


def wait_started(started: Path, count: int) -> None:
    wait_until(
        lambda: started.exists() and len(started.read_text().split()) == count,
        60,
        f"{count} BeforeInstall hook(s) to have started",
    )


def test_stop_without_rollback_waits_for_running_hooks_and_records_revisions(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(good, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    source, gate, started = gated(app, tmp_path, "2")
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    wait_started(started, AGENTS)

    stop = app.ok("stop-deployment", "--deployment-id", deployment_id)
    assert stop["status"] == "Pending"
    assert f"{AGENTS} running lifecycle event" in stop["statusMessage"]
    info = app.info(deployment_id)
    assert info["status"] == "InProgress"  # the hooks are still running
    assert info["errorInformation"]["code"] == "MANUAL_STOP"

    with gate.open("w"):
        pass  # release the hooks
    info = app.finished(deployment_id, "Stopped")
    assert "rollbackInfo" not in info
    assert info["deploymentOverview"]["Failed"] == AGENTS
    for agent in running.agents:
        target = app.target(deployment_id, agent.name)
        statuses = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
        assert statuses["BeforeInstall"] == "Succeeded"  # it ran to its end
        assert statuses["Install"] == statuses["ValidateService"] == "Skipped"
        assert target["instanceRevision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS  # Install never ran

    again = running.cli("stop-deployment", "--deployment-id", deployment_id)
    assert again.returncode == 254
    assert "already finished" in again.stderr


def test_stop_with_auto_rollback_redeploys_the_last_successful_revision(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(good, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    source, gate, started = gated(app, tmp_path, "2")
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.OneAtATime")
    wait_started(started, 1)

    stop = app.ok("stop-deployment", "--deployment-id", deployment_id, "--auto-rollback-enabled")
    assert stop["status"] == "Pending"
    with gate.open("w"):
        pass
    info = app.finished(deployment_id, "Stopped")
    overview = info["deploymentOverview"]
    assert (overview["Failed"], overview["Skipped"]) == (1, AGENTS - 1)
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = app.finished(rollback_id, "Succeeded")
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert rollback["revision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS
