"""In-place deployments behind a real HAProxy: each instance leaves the load balancer (drained)
before it is touched and rejoins only after it validated, so continuous traffic sees no failed
request. Also the ELBv2 backend against a local ELBv2-compatible server (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from deploy.v1 import traffic_pb2
from tests.cluster import Cluster, cluster
from tests.harness import client_of, start_server, unique
from tests.integration.apps import App, hello_web
from tests.loadbalancer import LOAD_BALANCER, HAProxy, Traffic, sample, start_haproxy

AGENTS = 3
IN_PLACE_WITH_LB = "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[HAProxy]:
    """One HAProxy per cluster (per database), so no backend server outlives its cluster."""
    running = start_haproxy(tmp_path_factory.mktemp("haproxy"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, proxy: HAProxy
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    with cluster(workdir, database_url, AGENTS, "lb", env=proxy.server_env()) as running:
        yield running


def target_group(running: Cluster, proxy: HAProxy) -> str:
    """A target group over the proxy's backend with every agent's app in it (by address)."""
    name = unique("web")
    created = running.cli(
        "create-target-group",
        "--name",
        name,
        "--load-balancer",
        LOAD_BALANCER,
        "--port",
        "80",
        "--deregistration-delay-seconds",
        "10",
        "--haproxy-backend",
        proxy.backend,
    )
    assert created.returncode == 0, created.stderr
    for agent in running.agents:
        address = f"127.0.0.1:{agent.app_port}"
        set_address = running.cli(
            "set-target-address",
            "--target-group-name",
            name,
            "--instance-name",
            agent.name,
            "--address",
            address,
        )
        assert set_address.returncode == 0, set_address.stderr
    return name


@pytest.fixture(scope="module")
def web(
    running: Cluster, proxy: HAProxy, tmp_path_factory: pytest.TempPathFactory
) -> tuple[App, str]:
    """hello-web deployed in place behind the proxy to every agent: (app, target group)."""
    group = target_group(running, proxy)
    app = App(
        running,
        "--deployment-style",
        IN_PLACE_WITH_LB,
        "--load-balancer-info",
        f"targetGroupInfoList=[{{name={group}}}]",
    )
    source = hello_web(tmp_path_factory.mktemp("web") / "v1", "v1")
    app.finished(app.deploy(app.push(source), "CodeDeployDefault.OneAtATime"), "Succeeded")
    return app, group


def serving(url: str, count: int = 30) -> set[str]:
    return set(sample(url, count))


def version(answer: str) -> str:
    """ "hello-web version V on NAME" → V."""
    return answer.split(" on ")[0].removeprefix("hello-web version ")


def test_in_place_with_a_load_balancer_drops_no_request(
    running: Cluster, proxy: HAProxy, web: tuple[App, str], tmp_path: Path
) -> None:
    app, group = web
    before = {version(a) for a in serving(proxy.url)}
    assert len(before) == 1
    with Traffic(proxy.url) as traffic:
        source = hello_web(tmp_path / "v2", "v2")
        deployment = app.deploy(app.push(source), "CodeDeployDefault.OneAtATime")
        app.finished(deployment, "Succeeded")
    assert traffic.failures == []
    assert {version(a) for a in traffic.answers} == before | {"v2"}, traffic.answers
    assert serving(proxy.url) == {f"hello-web version v2 on {a.name}" for a in running.agents}

    events = app.target(deployment, running.agents[0].name)["lifecycleEvents"]
    names = [e["lifecycleEventName"] for e in events]
    assert names[:4] == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
    ]
    assert names[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
    assert {e["status"] for e in events} == {"Succeeded"}
    info = app.info(deployment)
    assert info["deploymentStyle"]["deploymentOption"] == "WITH_TRAFFIC_CONTROL"
    assert info["loadBalancerInfo"] == {"targetGroupInfoList": [{"name": group}]}


def test_a_failed_validation_keeps_the_instance_out_of_the_load_balancer(
    running: Cluster, proxy: HAProxy, web: tuple[App, str], tmp_path: Path
) -> None:
    """The first instance fails ValidateService: it never rejoins, the others keep serving the
    version they had, and no request fails."""
    app, group = web
    (current,) = {version(a) for a in serving(proxy.url)}
    with Traffic(proxy.url) as traffic:
        broken = app.push(hello_web(tmp_path / "broken", "broken", validate_exit=3))
        app.finished(app.deploy(broken, "CodeDeployDefault.OneAtATime"), "Failed")
    assert traffic.failures == []
    others = running.agents[1:]
    assert serving(proxy.url) == {f"hello-web version {current} on {a.name}" for a in others}
    listed = running.cli("get-target-group", "--name", group).json()["targetGroup"]["targets"]
    states = {t["instanceName"]: t["state"] for t in listed}
    assert states == {
        running.agents[0].name: "Unused",
        **{a.name: "Serving" for a in others},
    }


def test_traffic_control_needs_an_existing_target_group(running: Cluster) -> None:
    app = App(running)
    cases = [
        (("--deployment-style", IN_PLACE_WITH_LB), "loadBalancerInfo.targetGroupInfoList"),
        (
            (
                "--deployment-style",
                IN_PLACE_WITH_LB,
                "--load-balancer-info",
                "targetGroupInfoList=[{name=no-such-group}]",
            ),
            "no-such-group",
        ),
        (("--deployment-style", "deploymentType=SIDEWAYS"), "deploymentType"),
        (("--load-balancer-info", "targetGroups=x"), "--load-balancer-info"),
    ]
    for flags, named in cases:
        result = running.cli(
            "update-deployment-group",
            "--application-name",
            app.name,
            "--current-deployment-group-name",
            app.group,
            *flags,
        )
        assert result.returncode != 0
        assert named in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert app.group_info()["deploymentStyle"]["deploymentOption"] == "WITHOUT_TRAFFIC_CONTROL"


def test_elbv2_target_group_registers_and_deregisters_targets(
    tmp_path: Path, database_url: str, s3_env: dict[str, str]
) -> None:
    """The ELBv2 backend against moto's ELBv2: AllowTraffic registers the instance's address,
    BlockTraffic deregisters it (ELBv2 drains it itself). The target group's ARN and endpoint
    are the server's configuration."""
    endpoint = s3_env["AWS_ENDPOINT_URL"]
    aws = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    credentials = {
        "aws_access_key_id": s3_env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": s3_env["AWS_SECRET_ACCESS_KEY"],
    }
    ec2 = boto3.client("ec2", **aws, **credentials)
    elbv2 = boto3.client("elbv2", **aws, **credentials)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    arn = elbv2.create_target_group(
        Name=unique("tg"), Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    balancer = {"target_group_arn": arn, "region": "us-east-1", "endpoint_url": endpoint}
    env = {**s3_env, "OPENDEPLOY_LOAD_BALANCERS": json.dumps({"aws": {"elbv2": balancer}})}
    server, address = start_server(tmp_path, database_url, env=env)
    try:
        elbv2_round_trip(address, elbv2, arn)
    finally:
        server.stop()


def elbv2_round_trip(address: str, elbv2: Any, arn: str) -> None:
    name = unique("elb")
    with client_of(address) as client, client_of(address, service="orchestrator") as ours:
        client.call(
            client.traffic.CreateTargetGroup,
            traffic_pb2.CreateTargetGroupRequest(
                name=name, load_balancer="aws", port=8080, deregistration_delay_seconds=5
            ),
        )
        answer = ours.call(
            ours.traffic.AllowTraffic,
            traffic_pb2.AllowTrafficRequest(
                target_group_name=name, instance_name="web-1", host="10.0.0.7", weight=100
            ),
        )
        assert answer.address == "10.0.0.7:8080"
        registered = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        assert [(d["Target"]["Id"], d["Target"]["Port"]) for d in registered] == [
            ("10.0.0.7", 8080)
        ]
        ours.traffic.BlockTraffic(
            traffic_pb2.BlockTrafficRequest(target_group_name=name, instance_name="web-1"),
            timeout=30,
        )
        left = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        assert [d for d in left if d["TargetHealth"]["State"] != "draining"] == []
        info = client.call(
            client.traffic.GetTargetGroup, traffic_pb2.GetTargetGroupRequest(name=name)
        ).target_group
        assert [(t.instance_name, t.state) for t in info.targets] == [
            ("web-1", traffic_pb2.TARGET_STATE_UNUSED)
        ]
