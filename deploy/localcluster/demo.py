"""`make demo`: hello-web deployed in place, a broken revision rolled back, then a blue/green
switch through HAProxy — each step checked against what the apps and the load balancer answer."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.localcluster.cluster import PROVISIONER, REPO, admin_client, answers, page, say
from deploy.localcluster.haproxy import WEB_BACKEND
from deploy.localcluster.layout import ClusterLayout
from deploy.localcluster.processes import wait_for
from deploy.v1 import common_pb2, fleet_pb2


def _result(value: dict[str, Any] | None) -> dict[str, Any]:
    assert value is not None, "the command returns a result"
    return value


DEMO_APP, DEMO_GROUP = "hello-web", "local"
DEMO_STYLE = "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL"
DEMO_LOAD_BALANCER = f"targetGroupInfoList=[{{name={WEB_BACKEND}}}]"
DEMO_CANARY = "hello-web.Canary25Percent10Seconds"


def demo(layout: ClusterLayout) -> None:
    """Deploy examples/hello-web in place, OneAtATime, to every agent and check every app;
    then deploy a broken revision and watch the group roll back to the good one by itself;
    then switch to a new version blue/green: a replacement fleet from the local provisioner,
    a 25% canary through HAProxy, all traffic, and the originals retired."""
    from deploy.cli.watch import watch

    version = time.strftime("%Y%m%d%H%M%S")
    if (layout.pids / "prometheus.pid").exists():
        say(f"Prometheus: PROMETHEUS_URL={layout.prometheus_url} (alerts: /alerts)")
    with admin_client(layout) as client, tempfile.TemporaryDirectory() as tmp:
        _demo_group(client)
        good = _demo_revision(Path(tmp) / "good", version, broken=False)
        deployment_id = _demo_deploy(client, good, f"hello-web {version}")
        say(f"deployment {deployment_id}: in place, one at a time, with the hooks' output")
        status = watch(client, deployment_id, logs=True)
        if status != "Succeeded":
            raise ClientError(f"deployment {deployment_id} ended {status}")
        _check_answers(layout, version)
        say(f"(deploy logs --deployment-id {deployment_id} prints that output again)")

        broken = _demo_revision(Path(tmp) / "broken", f"{version}-broken", broken=True)
        failing = _demo_deploy(client, broken, f"hello-web {version}-broken")
        say(f"deployment {failing}: a broken revision whose ValidateService fails")
        status = watch(client, failing)
        info = _deployment(client, failing)
        rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
        if status != "Failed" or not rollback:
            raise ClientError(f"deployment {failing} ended {status} without a rollback")
        say(f"deployment {failing} failed; rollback {rollback} redeploys version {version}")
        status = watch(client, rollback)
        if status != "Succeeded":
            raise ClientError(f"rollback {rollback} ended {status}")
        _check_answers(layout, version)
        if (layout.pids / "haproxy.pid").exists():
            _demo_blue_green(client, layout, Path(tmp), f"{version}-green")
        else:
            say("HAProxy is not running here: skipping the blue/green switch")
    say("demo succeeded; the cluster keeps running (make down stops it)")


def _demo_blue_green(client: DeployClient, layout: ClusterLayout, tmp: Path, version: str) -> None:
    from deploy.cli import configs
    from deploy.cli.watch import watch

    originals = _members(client)
    _update_group(
        client,
        deployment_style="deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
        load_balancer_info=DEMO_LOAD_BALANCER,
        blue_green_deployment_configuration=(
            f"greenFleetProvisioningOption={{action=PROVISION,provisionerName={PROVISIONER}}},"
            "terminateBlueInstancesOnDeploymentSuccess={action=TERMINATE,"
            "terminationWaitTimeInSeconds=0}"
        ),
    )
    known = _result(configs.list_deployment_configs(client, argparse.Namespace()))
    if DEMO_CANARY not in known["deploymentConfigsList"]:
        configs.create_deployment_config(
            client,
            argparse.Namespace(
                deployment_config_name=DEMO_CANARY,
                minimum_healthy_hosts="type=HOST_COUNT,value=0",
                compute_platform=None,
                traffic_routing_config=(
                    "type=TimeBasedCanary,"
                    "timeBasedCanary={canaryPercentage=25,canaryIntervalSeconds=10}"
                ),
            ),
        )
    source = _demo_revision(tmp / "green", version, broken=False)
    deployment_id = _demo_deploy(client, source, f"hello-web {version}", DEMO_CANARY)
    say(
        f"deployment {deployment_id}: blue/green — the provisioner {PROVISIONER!r} starts "
        f"{len(originals)} new agents, 25% of the traffic goes to them for 10s, then all of it; "
        f"the originals ({', '.join(originals)}) are retired"
    )
    status = watch(client, deployment_id)
    if status != "Succeeded":
        raise ClientError(f"blue/green deployment {deployment_id} ended {status}")
    replacements = _members(client)
    if set(replacements) & set(originals):
        raise ClientError(f"the originals are still registered: {replacements}")
    _check_answers(layout, version)
    say(f"the originals {', '.join(originals)} were retired; {', '.join(replacements)} serve")


def _demo_group(client: DeployClient) -> None:
    """The demo's application and group, rolling back automatically when a deployment fails."""
    from deploy.cli import applications, groups

    existing = _result(applications.list_applications(client, argparse.Namespace()))["applications"]
    if DEMO_APP not in existing:
        applications.create_application(client, argparse.Namespace(application_name=DEMO_APP))
        groups.create_deployment_group(
            client,
            argparse.Namespace(
                application_name=DEMO_APP,
                deployment_group_name=DEMO_GROUP,
                deployment_config_name="CodeDeployDefault.OneAtATime",
                service_role_arn=None,
                on_premises_instance_tag_filters=["Key=cluster,Value=local,Type=KEY_AND_VALUE"],
                deployment_style=DEMO_STYLE,
                load_balancer_info=DEMO_LOAD_BALANCER,
            ),
        )
        say(
            f"created application {DEMO_APP} and deployment group {DEMO_GROUP} "
            f"(OneAtATime, in place behind target group {WEB_BACKEND})"
        )
    _update_group(
        client,
        auto_rollback_configuration="enabled=true,events=DEPLOYMENT_FAILURE",
        deployment_style=DEMO_STYLE,
        load_balancer_info=DEMO_LOAD_BALANCER,
    )


def _update_group(client: DeployClient, **changes: str) -> None:
    """`deploy update-deployment-group` of the demo's group with `changes` (flags by their
    argument names); what is not given stays as it is."""
    from deploy.cli import groups

    unchanged = (
        "new_deployment_group_name",
        "deployment_config_name",
        "on_premises_instance_tag_filters",
        "on_premises_tag_set",
        "trigger_configurations",
        "auto_rollback_configuration",
    )
    groups.update_deployment_group(
        client,
        argparse.Namespace(
            application_name=DEMO_APP,
            current_deployment_group_name=DEMO_GROUP,
            **{**dict.fromkeys(unchanged), **changes},
        ),
    )


def _demo_revision(directory: Path, version: str, broken: bool) -> Path:
    """hello-web at `version`; a broken one fails its ValidateService health check."""
    shutil.copytree(REPO / "examples" / "hello-web", directory)
    (directory / "app" / "VERSION").write_text(version + "\n")
    if broken:
        (directory / "scripts" / "validate.sh").write_text(
            "#!/bin/sh\necho 'health check: /healthz answered 503 (database unreachable)'\nexit 1\n"
        )
    return directory


def _demo_deploy(
    client: DeployClient, source: Path, description: str, config: str | None = None
) -> str:
    from deploy.cli import deployments, revisions

    pushed = revisions.push(
        client,
        argparse.Namespace(
            application_name=DEMO_APP, source=str(source), s3_location=None, description=description
        ),
    )
    digest = _result(pushed)["revision"]["registryLocation"]["digest"]
    say(f"pushed {description} as {digest[:19]}…")
    created = deployments.create_deployment(
        client,
        argparse.Namespace(
            application_name=DEMO_APP,
            deployment_group_name=DEMO_GROUP,
            registry_location=f"digest={digest},bundleType=zip",
            s3_location=None,
            github_location=None,
            revision=None,
            deployment_config_name=config,
            description="make demo",
            file_exists_behavior=None,
            ignore_application_stop_failures=False,
        ),
    )
    return str(_result(created)["deploymentId"])


def _deployment(client: DeployClient, deployment_id: str) -> dict[str, Any]:
    from deploy.cli import deployments

    got = deployments.get_deployment(client, argparse.Namespace(deployment_id=deployment_id))
    info: dict[str, Any] = _result(got)["deploymentInfo"]
    return info


def _members(client: DeployClient) -> list[str]:
    """The registered agents of the demo's group (tag cluster=local), in index order."""
    instances = client.instances(
        fleet_pb2.ListOnPremisesInstancesRequest(
            tag_filters=[
                common_pb2.TagFilter(
                    key="cluster", value="local", type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE
                )
            ]
        )
    )
    return sorted((i.instance_name for i in instances), key=lambda n: int(n.rsplit("-", 1)[1]))


def _check_answers(layout: ClusterLayout, version: str) -> None:
    """Every agent of the group, and every answer of the load balancer, is exactly `version`."""
    want = f"version {version} on "
    with admin_client(layout) as client:
        members = _members(client)
    for name in members:
        url = f"http://127.0.0.1:{layout.app_port(int(name.rsplit('-', 1)[1]))}/"
        if not answers(url, want):
            raise ClientError(f"{name} at {url} does not answer {want}")
        say(f"{name}: {url} answers hello-web version {version}")
    if (layout.pids / "haproxy.pid").exists():
        wait_for(lambda: answers(layout.web_url, want), 10, f"{layout.web_url} to answer")
        heard = {page(layout.web_url) for _ in range(4 * len(members))}
        if not all(want in answer for answer in heard):
            raise ClientError(f"{layout.web_url} answers {sorted(heard)}, not only {want}")
        say(f"load balancer {layout.web_url} answers hello-web version {version} only")
