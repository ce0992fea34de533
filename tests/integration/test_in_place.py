"""An in-place deployment end to end: CLI → services → three real agents → hooks → the app."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, cluster
from tests.harness import unique
from tests.integration.apps import deploy, push, setup_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-web"
AGENTS = 3


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), database_url, AGENTS, "node") as running:
        yield running


def test_deployment_to_three_agents_installs_files_runs_hooks_and_app_answers(
    running: Cluster, tmp_path: Path
) -> None:
    app, group = unique("hello"), "web"
    setup_app(running, app, group, "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    digest = push(running, app, EXAMPLE)
    deployment_id = deploy(running, app, group, digest, "CodeDeployDefault.OneAtATime")

    waited = running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
    assert waited.returncode == 0, waited.stderr

    info = running.cli("get-deployment", "--deployment-id", deployment_id).json()["deploymentInfo"]
    assert info["status"] == "Succeeded"
    assert info["deploymentOverview"]["Succeeded"] == AGENTS
    with running.client() as client:  # a waiter's watch: the deployment without its targets
        full = list(client.watch_deployment(deployment_id, timeout=30))[-1]
        summary = list(client.watch_deployment(deployment_id, timeout=30, summary_only=True))[-1]
    assert len(full.instance_targets) == AGENTS and not summary.instance_targets
    assert summary.deployment_info == full.deployment_info
    targets = running.cli("list-deployment-targets", "--deployment-id", deployment_id).json()
    assert sorted(targets["targetIds"]) == [a.name for a in running.agents]
    for agent in running.agents:
        installed = agent.prefix / "opt/hello-web"
        assert (installed / "server.py").read_bytes() == (EXAMPLE / "app/server.py").read_bytes()
        assert agent.state_file("before-install").read_text().strip() == deployment_id
        assert agent.state_file("installed").read_text().split() == [deployment_id, "1"]
        body = urllib.request.urlopen(f"http://127.0.0.1:{agent.app_port}/", timeout=5).read()
        assert body.decode() == f"hello-web version 1 on {agent.name}\n"
        target = running.cli(
            "get-deployment-target", "--deployment-id", deployment_id, "--target-id", agent.name
        ).json()["deploymentTarget"]
        events = target["instanceTarget"]["lifecycleEvents"]
        assert [e["lifecycleEventName"] for e in events] == [
            "ApplicationStop",
            "DownloadBundle",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
        ]
        assert {e["status"] for e in events} == {"Succeeded"}

    metrics = urllib.request.urlopen(running.server.metrics_url, timeout=5).read().decode()
    assert 'opendeploy_deployments_total{status="Succeeded"}' in metrics
    assert "opendeploy_agents_connected 3.0" in metrics
    assert 'opendeploy_instances{health="Online"} 3.0' in metrics
    assert 'opendeploy_grpc_server_handled_total{code="OK",method="CreateDeployment"' in metrics

    # A second revision: ApplicationStop of the first stops the old app; the new one answers.
    second = tmp_path / "hello-web-2"
    shutil.copytree(EXAMPLE, second)
    (second / "app/VERSION").write_text("2\n")
    digest2 = push(running, app, second)
    deployment2 = deploy(running, app, group, digest2, "CodeDeployDefault.AllAtOnce")
    waited = running.cli("wait", "deployment-successful", "--deployment-id", deployment2)
    assert waited.returncode == 0, waited.stderr
    for agent in running.agents:
        body = urllib.request.urlopen(f"http://127.0.0.1:{agent.app_port}/", timeout=5).read()
        assert body.decode() == f"hello-web version 2 on {agent.name}\n"
        log = agent.root / info_group_id(running, app, group) / deployment2 / "logs/scripts.log"
        assert "stopped hello-web" in log.read_text()


def info_group_id(running: Cluster, app: str, group: str) -> str:
    result = running.cli(
        "get-deployment-group", "--application-name", app, "--deployment-group-name", group
    )
    return str(result.json()["deploymentGroupInfo"]["deploymentGroupId"])


def failing_bundle(root: Path) -> Path:
    """One script per hook; ValidateService prints and exits 3."""
    (root / "app").mkdir(parents=True)
    (root / "app/index.txt").write_text("failing\n")
    (root / "scripts").mkdir()
    hooks = [
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
    ]
    lines = [
        "version: 0.0",
        "os: linux",
        "files:",
        "  - source: app",
        "    destination: /opt/failing-web",
        "hooks:",
    ]
    for hook in hooks:
        script = root / "scripts" / f"{hook}.sh"
        body = "#!/bin/sh\necho running $LIFECYCLE_EVENT\n"
        if hook == "ValidateService":
            body += "echo 'service is not healthy' >&2\nexit 3\n"
        script.write_text(body)
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh", "      timeout: 30"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def test_failing_validate_service_fails_the_deployment_with_diagnostics(
    running: Cluster, tmp_path: Path
) -> None:
    app, group = unique("failing"), "web"
    setup_app(running, app, group, "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    digest = push(running, app, failing_bundle(tmp_path / "bundle"))
    deployment_id = deploy(running, app, group, digest, "CodeDeployDefault.OneAtATime")

    waited = running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
    assert waited.returncode != 0
    assert "Failed" in waited.stderr

    info = running.cli("get-deployment", "--deployment-id", deployment_id).json()["deploymentInfo"]
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    overview = info["deploymentOverview"]
    assert (overview["Failed"], overview["Skipped"], overview["Succeeded"]) == (1, 2, 0)

    failed = [
        t
        for t in running.cli("list-deployment-targets", "--deployment-id", deployment_id).json()[
            "targetIds"
        ]
    ]
    details = [
        running.cli(
            "get-deployment-target", "--deployment-id", deployment_id, "--target-id", t
        ).json()["deploymentTarget"]["instanceTarget"]
        for t in failed
    ]
    failed_target = next(d for d in details if d["status"] == "Failed")
    validate = failed_target["lifecycleEvents"][-1]
    assert validate["lifecycleEventName"] == "ValidateService"
    assert validate["status"] == "Failed"
    diagnostics = validate["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed"
    assert diagnostics["scriptName"] == "scripts/ValidateService.sh"
    assert "exit code 3" in diagnostics["message"]
    assert "[stderr]service is not healthy" in diagnostics["logTail"]
    assert "[stdout]running ValidateService" in diagnostics["logTail"]


def chain_breaking_bundle(root: Path, ran: Path) -> Path:
    """BeforeInstall fails; each later hook would leave a file in `ran` if it ran."""
    (root / "scripts").mkdir(parents=True)
    lines = ["version: 0.0", "os: linux", "hooks:"]
    for hook in ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"):
        script = root / "scripts" / f"{hook}.sh"
        fails = hook == "BeforeInstall"
        script.write_text("#!/bin/sh\nexit 1\n" if fails else f"#!/bin/sh\ntouch {ran}/{hook}\n")
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def test_a_failed_event_ends_its_hosts_events_there(running: Cluster, tmp_path: Path) -> None:
    """A host's agent is sent its events together, each to run only if the one before passed:
    after BeforeInstall fails, no later hook runs, and the record says so."""
    app, group = unique("chainbreak"), "web"
    setup_app(running, app, group, "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    ran = tmp_path / "ran"
    ran.mkdir()
    digest = push(running, app, chain_breaking_bundle(tmp_path / "bundle", ran))
    deployment_id = deploy(running, app, group, digest, "CodeDeployDefault.AllAtOnce")
    waited = running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
    assert waited.returncode != 0
    assert list(ran.iterdir()) == []
    for agent in running.agents:
        target = running.cli(
            "get-deployment-target", "--deployment-id", deployment_id, "--target-id", agent.name
        ).json()["deploymentTarget"]["instanceTarget"]
        statuses = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
        assert statuses == {
            "ApplicationStop": "Succeeded",
            "DownloadBundle": "Succeeded",
            "BeforeInstall": "Failed",
            "Install": "Skipped",
            "AfterInstall": "Skipped",
            "ApplicationStart": "Skipped",
            "ValidateService": "Skipped",
        }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [
                "create-deployment",
                "--application-name",
                "no-such-app",
                "--deployment-group-name",
                "web",
                "--registry-location",
                "digest=sha256:" + "0" * 64 + ",bundleType=zip",
            ],
            "application 'no-such-app'",
        ),
        (["get-deployment", "--deployment-id", "d-NOSUCH123"], "deployment 'd-NOSUCH123'"),
        (
            [
                "create-deployment",
                "--application-name",
                "APP",
                "--deployment-group-name",
                "no-such-group",
                "--registry-location",
                "digest=sha256:" + "0" * 64 + ",bundleType=zip",
            ],
            "deployment group 'no-such-group'",
        ),
        (
            [
                "create-deployment",
                "--application-name",
                "APP",
                "--deployment-group-name",
                "web",
                "--registry-location",
                "digest=sha256:" + "0" * 64 + ",bundleType=zip",
            ],
            "not in the registry store",
        ),
        (
            [
                "create-deployment",
                "--application-name",
                "APP",
                "--deployment-group-name",
                "web",
                "--registry-location",
                "digest=sha1:abc",
            ],
            "registryLocation.digest",
        ),
    ],
)
def test_unknown_names_get_one_clear_line_and_nonzero_exit(
    running: Cluster, args: list[str], expected: str
) -> None:
    app = "known-app"
    if running.cli("get-application", "--application-name", app).returncode != 0:
        setup_app(running, app, "web", "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    result = running.cli(*[app if a == "APP" else a for a in args])
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def stop_failing_bundle(root: Path, version: str) -> Path:
    """ApplicationStop always fails; the rest succeeds."""
    (root / "scripts").mkdir(parents=True)
    (root / "scripts/stop.sh").write_text("#!/bin/sh\necho cannot stop >&2\nexit 1\n")
    (root / "scripts/stop.sh").chmod(0o755)
    (root / "VERSION").write_text(version)
    (root / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n  - source: VERSION\n    destination: /opt/stopfail\n"
        "hooks:\n  ApplicationStop:\n    - location: scripts/stop.sh\n"
    )
    return root


def test_ignore_application_stop_failures_lets_a_failing_stop_pass(
    running: Cluster, tmp_path: Path
) -> None:
    app, group = unique("stopfail"), "web"
    setup_app(running, app, group, "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    first = deploy(
        running,
        app,
        group,
        push(running, app, stop_failing_bundle(tmp_path / "1", "1")),
        "CodeDeployDefault.AllAtOnce",
    )
    assert running.cli("wait", "deployment-successful", "--deployment-id", first).returncode == 0

    digest = push(running, app, stop_failing_bundle(tmp_path / "2", "2"))
    refused = deploy(running, app, group, digest, "CodeDeployDefault.AllAtOnce")
    assert running.cli("wait", "deployment-successful", "--deployment-id", refused).returncode != 0
    target = running.cli(
        "get-deployment-target", "--deployment-id", refused, "--target-id", running.agents[0].name
    ).json()["deploymentTarget"]["instanceTarget"]
    assert target["lifecycleEvents"][0]["status"] == "Failed"
    assert target["lifecycleEvents"][1]["status"] == "Skipped"

    created = running.cli(
        "create-deployment",
        "--application-name",
        app,
        "--deployment-group-name",
        group,
        "--deployment-config-name",
        "CodeDeployDefault.AllAtOnce",
        "--ignore-application-stop-failures",
        "--registry-location",
        f"digest={digest},bundleType=zip",
    )
    allowed = created.json()["deploymentId"]
    assert running.cli("wait", "deployment-successful", "--deployment-id", allowed).returncode == 0
    for agent in running.agents:
        assert (agent.prefix / "opt/stopfail/VERSION").read_text() == "2"
