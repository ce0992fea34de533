"""Deployment groups over time, on real agents: new instances catch up, outdated-only
deployments, webhook triggers (with a retry after a 500), and update-deployment-group."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agents import Agent, register, start_agent, wait_online
from tests.cluster import Cluster, cluster
from tests.harness import unique
from tests.integration.apps import App, bundle, installed
from tests.processes import wait_until

AGENTS = 2
TAG = "grp"


LOOPBACK_WEBHOOKS = {"OPENDEPLOY_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"}
"""The tests' webhook receivers listen on 127.0.0.1, which servers deny by default."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    with cluster(workdir, database_url, AGENTS, TAG, env=LOOPBACK_WEBHOOKS) as running:
        yield running


@pytest.fixture
def extra_agents(running: Cluster) -> Iterator[list[Agent]]:
    """Agents a test starts; stopped after it."""
    agents: list[Agent] = []
    yield agents
    for agent in agents:
        agent.stop_app()
        if agent.process:
            agent.process.stop()


def deployments_of(app: App) -> list[str]:
    listed = app.ok(
        "list-deployments",
        "--application-name",
        app.name,
        "--deployment-group-name",
        app.group,
    )
    return list(listed["deployments"])


def test_new_and_retagged_instances_catch_up_with_the_group_revision(
    running: Cluster, tmp_path: Path, extra_agents: list[Agent]
) -> None:
    late = unique("late")
    app = App(running)
    app.ok(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--on-premises-instance-tag-filters",
        f"Key=cluster,Value={late},Type=KEY_AND_VALUE",
    )
    extra_agents.append(
        start_agent(running.workdir, running.address, f"{late}-1", {"cluster": late})
    )
    wait_online(running.address, [extra_agents[0].name])
    digest = app.push(bundle(tmp_path / "v1", "1", app.dest))
    first = app.deploy(digest, "CodeDeployDefault.OneAtATime")
    app.finished(first, "Succeeded")

    # An instance registering with the group's tags receives the revision by itself: the
    # catch-up starts at its registration and waits for its agent to connect.
    token = register(running.address, f"{late}-2", {"cluster": late})
    catch_up = wait_until(
        lambda: next((d for d in deployments_of(app) if d != first), None),
        60,
        "a catch-up deployment",
    )
    newcomer = start_agent(
        running.workdir,
        running.address,
        f"{late}-2",
        {"cluster": late},
        config={"join_token": token},
    )
    extra_agents.append(newcomer)
    info = app.finished(catch_up, "Succeeded")
    assert info["creator"] == "CodeDeployAutoUpdate"
    assert info["updateOutdatedInstancesOnly"] is True
    targets = app.ok("list-deployment-targets", "--deployment-id", catch_up)["targetIds"]
    assert targets == [newcomer.name]
    assert (newcomer.prefix / app.dest.lstrip("/") / "version.txt").read_text() == "1\n"

    # An instance that gains the tags catches up too.
    other = start_agent(running.workdir, running.address, f"{late}-3", {"cluster": "elsewhere"})
    extra_agents.append(other)
    wait_online(running.address, [other.name])
    assert len(deployments_of(app)) == 2
    app.ok(
        "add-tags-to-on-premises-instances",
        "--instance-names",
        other.name,
        "--tags",
        f"Key=cluster,Value={late}",
    )
    retagged = wait_until(
        lambda: next((d for d in deployments_of(app) if d not in (first, catch_up)), None),
        60,
        "a catch-up deployment for the retagged instance",
    )
    app.finished(retagged, "Succeeded")
    assert app.ok("list-deployment-targets", "--deployment-id", retagged)["targetIds"] == [
        other.name
    ]

    # Everyone is current: an outdated-only deployment of the same revision touches nobody.
    noop = app.deploy(digest, "CodeDeployDefault.OneAtATime", "--update-outdated-instances-only")
    info = app.finished(noop, "Succeeded")
    assert app.ok("list-deployment-targets", "--deployment-id", noop)["targetIds"] == []


def test_update_outdated_instances_only_skips_current_instances(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    v1 = app.push(bundle(tmp_path / "v1", "1", app.dest))
    app.finished(app.deploy(v1, "CodeDeployDefault.AllAtOnce"), "Succeeded")
    v2 = app.push(bundle(tmp_path / "v2", "2", app.dest))
    second = app.deploy(v2, "CodeDeployDefault.AllAtOnce", "--update-outdated-instances-only")
    app.finished(second, "Succeeded")
    assert len(app.ok("list-deployment-targets", "--deployment-id", second)["targetIds"]) == AGENTS
    assert installed(app) == ["2"] * AGENTS
    third = app.deploy(v2, "CodeDeployDefault.AllAtOnce", "--update-outdated-instances-only")
    app.finished(third, "Succeeded")
    assert app.ok("list-deployment-targets", "--deployment-id", third)["targetIds"] == []


class Webhook:
    """A real HTTP server on 127.0.0.1 recording each POST; answers 500 to the first one."""

    def __init__(self) -> None:
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 500 if not hook.received else 200
                hook.received.append((status, body))
                hook.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [body["event"] for status, body in self.received if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def test_triggers_post_every_subscribed_event_and_retry_after_a_500(
    running: Cluster, tmp_path: Path, webhook: Webhook
) -> None:
    trigger = json.dumps(
        [
            {
                "triggerName": "to-test",
                "triggerTargetUrl": webhook.url,
                "triggerEvents": ["DeploymentStart", "DeploymentSuccess", "InstanceSuccess"],
            }
        ]
    )
    app = App(running, "--trigger-configurations", trigger)
    deployment_id = app.deploy(
        app.push(bundle(tmp_path / "v1", "1", app.dest)), "CodeDeployDefault.AllAtOnce"
    )
    app.finished(deployment_id, "Succeeded")
    wanted = ["DeploymentStart", "DeploymentSuccess", *["InstanceSuccess"] * AGENTS]
    wait_until(
        lambda: sorted(webhook.events()) == sorted(wanted),
        60,
        f"webhook deliveries of {wanted}",
    )
    first_status, first_body = webhook.received[0]
    assert first_status == 500
    retried = [b for s, b in webhook.received[1:] if b == first_body]
    assert retried, "the delivery answered with 500 was retried with the same document"
    success = next(b for s, b in webhook.received if b["event"] == "DeploymentSuccess")
    assert success["deploymentId"] == deployment_id
    assert success["status"] == "SUCCEEDED"
    assert success["deploymentOverview"]["Succeeded"] == AGENTS
    instance = next(b for s, b in webhook.received if b["event"] == "InstanceSuccess")
    assert instance["instanceStatus"] == "Succeeded"
    assert instance["lifecycleEvents"][-1]["LifecycleEvent"] == "ValidateService"

    def delivered() -> bool:
        [config] = app.group_info()["triggerConfigurations"]
        return bool(config["lastDelivery"]["status"] == "Delivered")

    wait_until(delivered, 30, "the group to show the last delivery")
    [config] = app.group_info()["triggerConfigurations"]
    assert config["triggerEvents"] == ["DeploymentStart", "DeploymentSuccess", "InstanceSuccess"]
    assert config["lastDelivery"]["httpStatus"] == 200


def test_a_trigger_url_token_is_never_shown_and_survives_an_update_with_what_was_shown(
    running: Cluster, tmp_path: Path, webhook: Webhook
) -> None:
    secret_url = f"{webhook.url}?token=s3cr3t-value"
    trigger = {
        "triggerName": "with-token",
        "triggerTargetUrl": secret_url,
        "triggerEvents": ["DeploymentSuccess"],
    }
    app = App(running, "--trigger-configurations", json.dumps([trigger]))
    [shown] = app.group_info()["triggerConfigurations"]
    assert shown["triggerTargetUrl"] == f"{webhook.url}?token=REDACTED"
    app.ok(  # a get → edit → update round trip, as scripts do it
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--trigger-configurations",
        json.dumps([{**trigger, "triggerTargetUrl": shown["triggerTargetUrl"]}]),
    )
    deployment_id = app.deploy(
        app.push(bundle(tmp_path / "v1", "1", app.dest)), "CodeDeployDefault.AllAtOnce"
    )
    app.finished(deployment_id, "Succeeded")
    wait_until(lambda: webhook.received, 60, "the DeploymentSuccess delivery")
    assert webhook.paths[-1] == "/hook?token=s3cr3t-value"
    assert "s3cr3t-value" not in running.server.log.read_text()


def test_update_deployment_group_renames_and_replaces_only_what_is_given(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    deployment_id = app.deploy(
        app.push(bundle(tmp_path / "v1", "1", app.dest)), "CodeDeployDefault.AllAtOnce"
    )
    app.finished(deployment_id, "Succeeded")
    app.ok(
        "create-deployment-group",
        "--application-name",
        app.name,
        "--deployment-group-name",
        "taken",
    )

    clash = running.cli(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--new-deployment-group-name",
        "taken",
    )
    assert clash.returncode == 254
    assert "newDeploymentGroupName" in clash.stderr
    unknown_config = running.cli(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--deployment-config-name",
        "NoSuchConfig",
    )
    assert unknown_config.returncode == 254
    assert "NoSuchConfig" in unknown_config.stderr

    app.ok(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--new-deployment-group-name",
        "renamed",
        "--deployment-config-name",
        "CodeDeployDefault.HalfAtATime",
        "--auto-rollback-configuration",
        "enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_REQUEST",
    )
    old = running.cli(
        "get-deployment-group", "--application-name", app.name, "--deployment-group-name", "g"
    )
    assert old.returncode == 254
    app.group = "renamed"
    group = app.group_info()
    assert group["deploymentConfigName"] == "CodeDeployDefault.HalfAtATime"
    assert group["onPremisesInstanceTagFilters"] == [
        {"Key": "cluster", "Value": TAG, "Type": "KEY_AND_VALUE"}
    ]  # not given, so kept
    assert group["autoRollbackConfiguration"]["events"] == [
        "DEPLOYMENT_FAILURE",
        "DEPLOYMENT_STOP_ON_REQUEST",
    ]
    assert group["lastSuccessfulDeployment"]["deploymentId"] == deployment_id
    assert deployments_of(app) == [deployment_id]
    assert app.info(deployment_id)["deploymentGroupName"] == "renamed"

    # A list flag without values clears the list.
    app.ok(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        "renamed",
        "--on-premises-instance-tag-filters",
    )
    assert app.group_info()["onPremisesInstanceTagFilters"] == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            [
                "--trigger-configurations",
                "triggerName=t,triggerTargetUrl=ftp://x,triggerEvents=DeploymentStart",
            ],
            "triggerConfigurations[0].triggerTargetUrl",
        ),
        (
            ["--trigger-configurations", "triggerName=t,triggerTargetUrl=http://x"],
            "triggerConfigurations[0].triggerEvents",
        ),
        (
            [
                "--trigger-configurations",
                "triggerName=t,triggerTargetUrl=http://x,triggerEvents=Nope",
            ],
            "unknown event 'Nope'",
        ),
        (["--auto-rollback-configuration", "enabled=true"], "autoRollbackConfiguration.events"),
        (["--auto-rollback-configuration", "enabled=yes"], "enabled must be true or false"),
    ],
)
def test_bad_group_settings_are_refused_naming_the_field(
    running: Cluster, flags: list[str], message: str
) -> None:
    app = unique("bad")
    assert running.cli("create-application", "--application-name", app).returncode == 0
    refused = running.cli(
        "create-deployment-group", "--application-name", app, "--deployment-group-name", "g", *flags
    )
    assert refused.returncode != 0
    assert message in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    listed = running.cli("list-deployment-groups", "--application-name", app).json()
    assert listed["deploymentGroups"] == []
