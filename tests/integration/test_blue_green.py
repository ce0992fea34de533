"""Blue/green deployments behind a real HAProxy with real agents and continuous HTTP traffic:
the replacement fleet is installed, traffic switches (all at once, or in canary/linear steps by
weights) with no failed request, the ready wait holds until continue-deployment or expires, a
rollback sends traffic back to the originals without reinstalling them, and an alarm (a real
Prometheus alerting rule) firing during a canary step keeps traffic there and rolls back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agents import wait_online
from tests.cluster import Cluster, cluster
from tests.harness import start_server, unique
from tests.integration.apps import hello_web
from tests.integration.fleets import Fleets
from tests.loadbalancer import HAProxy, Traffic, sample, start_haproxy
from tests.processes import wait_until
from tests.prometheus import ControlledMetric, Prometheus, start_prometheus

AGENTS = 4
ALERT = "OpenDeployCanaryErrors"
RULES = {
    "groups": [
        {
            "name": "test",
            "rules": [{"alert": ALERT, "expr": "opendeploy_test_errors > 0", "for": "0s"}],
        }
    ]
}


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[HAProxy]:
    """One HAProxy per cluster (per database), so no backend server outlives its cluster."""
    running = start_haproxy(tmp_path_factory.mktemp("haproxy"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def metric() -> Iterator[ControlledMetric]:
    served = ControlledMetric()
    yield served
    served.close()


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, metric: ControlledMetric
) -> Iterator[Prometheus]:
    running = start_prometheus(tmp_path_factory.mktemp("prometheus"), [metric.target], RULES)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    proxy: HAProxy,
    prometheus: Prometheus,
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    env = {
        **proxy.server_env(),
        "OPENDEPLOY_PROMETHEUS_URL": prometheus.url,
        "OPENDEPLOY_ALARM_POLL_SECONDS": "1",
    }
    with cluster(workdir, database_url, AGENTS, "bg", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def fleets(running: Cluster, proxy: HAProxy, tmp_path_factory: pytest.TempPathFactory) -> Fleets:
    """Fleet a serves v1 (the first blue/green deployment has no originals)."""
    fleets = Fleets(running, proxy, tmp_path_factory.mktemp("bundles"))
    fleets.retarget("b")  # so that fleet a is the replacement of an empty original fleet
    first = fleets.deploy("v1")
    fleets.app.finished(first, "Succeeded")
    fleets.switched()
    fleets.expect_serving("v1", "a")
    return fleets


def status(fleets: Fleets, deployment_id: str) -> str:
    return str(fleets.app.info(deployment_id)["status"])


def current_version(fleets: Fleets) -> str:
    (answer,) = {a.split(" on ")[0] for a in fleets.serving()}
    return answer.removeprefix("hello-web version ")


def test_all_at_once_switch_drops_no_request(fleets: Fleets) -> None:
    fleets.configure("terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}")
    blue_fleet, green_fleet = fleets.live, fleets.idle
    with Traffic(fleets.proxy.url) as traffic:
        deployment = fleets.deploy("v2")
        info = fleets.app.finished(deployment, "Succeeded")
    assert traffic.failures == []
    fleets.switched()
    fleets.expect_serving("v2", green_fleet)
    assert info["trafficShift"]["greenPercent"] == 100
    labels = {
        a.name: fleets.app.target(deployment, a.name)
        for a in fleets.members[blue_fleet] + fleets.members[green_fleet]
    }
    for agent in fleets.members[green_fleet]:
        target = labels[agent.name]
        assert target["instanceLabel"] == "Green"
        names = [e["lifecycleEventName"] for e in target["lifecycleEvents"]]
        assert names[-3:] == ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
        assert "BlockTraffic" not in names
    for agent in fleets.members[blue_fleet]:
        target = labels[agent.name]
        assert target["instanceLabel"] == "Blue"
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == [
            "BeforeBlockTraffic",
            "BlockTraffic",
            "AfterBlockTraffic",
        ]
        assert target["status"] == "Succeeded"
    # KEEP_ALIVE: the originals are still registered and still run the old version
    for agent in fleets.members[blue_fleet]:
        assert (
            fleets.ok("get-on-premises-instance", "--instance-name", agent.name)["instanceInfo"][
                "registrationStatus"
            ]
            == "Registered"
        )


def test_ready_wait_holds_until_continue_deployment(fleets: Fleets) -> None:
    fleets.configure(
        "deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInMinutes=60},"
        "terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}"
    )
    before, blue_fleet, green_fleet = current_version(fleets), fleets.live, fleets.idle
    deployment = fleets.deploy("v3")
    wait_until(lambda: status(fleets, deployment) == "Ready", 60, "the deployment to be Ready")
    info = fleets.app.info(deployment)
    assert info["deploymentOverview"]["Ready"] == 2
    assert "readyWaitUntil" in info["trafficShift"]
    fleets.expect_serving(before, blue_fleet)  # nothing rerouted while it waits
    with Traffic(fleets.proxy.url) as traffic:
        fleets.ok("continue-deployment", "--deployment-id", deployment)
        fleets.app.finished(deployment, "Succeeded")
    assert traffic.failures == []
    fleets.switched()
    fleets.expect_serving("v3", green_fleet)


def test_ready_wait_expiry_stops_the_deployment_and_keeps_the_originals(fleets: Fleets) -> None:
    fleets.configure(
        "deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInSeconds=2},"
        "terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}"
    )
    before, blue_fleet = current_version(fleets), fleets.live
    deployment = fleets.deploy("v4")
    info = fleets.app.finished(deployment, "Stopped")
    assert info["errorInformation"]["code"] == "TIMEOUT"
    assert "ready wait" in info["errorInformation"]["message"]
    fleets.expect_serving(before, blue_fleet)
    again = fleets.running.cli("continue-deployment", "--deployment-id", deployment)
    assert again.returncode != 0
    assert "not Ready" in again.stderr or "Stopped" in again.stderr


def test_canary_then_linear_steps_show_the_expected_mix(fleets: Fleets) -> None:
    fleets.configure("terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}")
    config = unique("canary")
    fleets.ok(
        "create-deployment-config",
        "--deployment-config-name",
        config,
        "--minimum-healthy-hosts",
        "type=HOST_COUNT,value=0",
        "--traffic-routing-config",
        "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=25,canaryIntervalSeconds=8}",
    )
    before, green_fleet = current_version(fleets), fleets.idle
    with Traffic(fleets.proxy.url) as traffic:
        deployment = fleets.deploy("v5", config=config)

        def canary_routed() -> bool:
            info = fleets.app.info(deployment)
            return (
                info["trafficShift"].get("step") == 0
                and info["deploymentOverview"]["Succeeded"] == 2
            )

        wait_until(canary_routed, 60, "the canary step")
        # The background traffic draws from the same weighted round robin, so the share is
        # measured over every request answered in the window, not over this thread's alone.
        seen = traffic.seen()
        mix = sample(fleets.proxy.url, 200) + (traffic.seen() - seen)
        green = sum(n for answer, n in mix.items() if "version v5" in answer)
        assert 0.15 <= green / mix.total() <= 0.35, mix  # 25%, give or take round-robin phase
        blue = sum(n for answer, n in mix.items() if f"version {before}" in answer)
        assert blue + green == mix.total()
        fleets.app.finished(deployment, "Succeeded")
    assert traffic.failures == []
    fleets.switched()
    fleets.expect_serving("v5", green_fleet)

    linear = unique("linear")
    fleets.ok(
        "create-deployment-config",
        "--deployment-config-name",
        linear,
        "--minimum-healthy-hosts",
        "type=HOST_COUNT,value=0",
        "--traffic-routing-config",
        "type=TimeBasedLinear,timeBasedLinear={linearPercentage=40,linearIntervalSeconds=3}",
    )
    deployment = fleets.deploy("v6", config=linear)
    seen: set[int] = set()

    def finished() -> bool:
        info = fleets.app.info(deployment)
        if info["trafficShift"].get("step", -1) >= 0:
            seen.add(info["trafficShift"]["greenPercent"])
        return info["status"] in ("Succeeded", "Failed", "Stopped")

    wait_until(finished, 90, "the linear deployment to finish")
    assert status(fleets, deployment) == "Succeeded"
    assert seen == {40, 80, 100}
    fleets.switched()
    fleets.expect_serving("v6", fleets.live)


def test_rollback_returns_traffic_to_the_originals(fleets: Fleets) -> None:
    fleets.configure("terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}")
    before, blue_fleet = current_version(fleets), fleets.live
    with Traffic(fleets.proxy.url) as traffic:
        failing = fleets.deploy("v7", after_allow_exit=1)
        info = fleets.app.finished(failing, "Failed")
        rollback = info["rollbackInfo"]["rollbackDeploymentId"]
        rolled = fleets.app.finished(rollback, "Succeeded")
    assert traffic.failures == [], traffic.failures
    assert rolled["creator"] == "codeDeployRollback"
    fleets.expect_serving(before, blue_fleet)
    for agent in fleets.members[blue_fleet]:
        events = fleets.app.target(rollback, agent.name)["lifecycleEvents"]
        # the originals only rejoin: nothing is downloaded or installed again
        assert [e["lifecycleEventName"] for e in events] == [
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic",
        ]


def test_blue_green_needs_a_replacement_fleet_and_traffic_control(fleets: Fleets) -> None:
    source = hello_web(fleets.tmp / unique("bad"), "bad")
    digest = fleets.app.push(source)
    result = fleets.running.cli(
        "create-deployment",
        "--application-name",
        fleets.app.name,
        "--deployment-group-name",
        fleets.app.group,
        "--registry-location",
        f"digest={digest},bundleType=zip",
    )
    assert result.returncode != 0
    assert "targetInstances" in result.stderr
    bad = fleets.running.cli(
        "update-deployment-group",
        *fleets.group_flags(),
        "--deployment-style",
        "deploymentType=BLUE_GREEN,deploymentOption=WITHOUT_TRAFFIC_CONTROL",
    )
    assert bad.returncode != 0
    assert "WITH_TRAFFIC_CONTROL" in bad.stderr
    unknown = fleets.running.cli(
        "update-deployment-group",
        *fleets.group_flags(),
        "--blue-green-deployment-configuration",
        "greenFleetProvisioningOption={action=PROVISION,provisionerName=nowhere}",
    )
    assert unknown.returncode != 0
    assert "provisionerName" in unknown.stderr


def test_a_ready_wait_survives_a_killed_server(fleets: Fleets, database_url: str) -> None:
    fleets.configure(
        "deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInMinutes=60},"
        "terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}"
    )
    green_fleet = fleets.idle
    deployment = fleets.deploy("v8")
    wait_until(lambda: status(fleets, deployment) == "Ready", 60, "the deployment to be Ready")
    running = fleets.running
    running.server.kill()  # SIGKILL while it waits
    port = int(running.address.rsplit(":", 1)[1])
    running.server, _ = start_server(running.workdir, database_url, port=port, env=running.env)
    wait_online(running.address, [a.name for a in running.agents])
    assert status(fleets, deployment) == "Ready"
    fleets.ok("continue-deployment", "--deployment-id", deployment)
    fleets.app.finished(deployment, "Succeeded")
    fleets.switched()
    fleets.expect_serving("v8", green_fleet)


def test_an_alarm_firing_during_a_canary_step_keeps_traffic_and_rolls_back_to_the_originals(
    fleets: Fleets, metric: ControlledMetric, prometheus: Prometheus
) -> None:
    fleets.configure("terminateBlueInstancesOnDeploymentSuccess={action=KEEP_ALIVE}")
    fleets.ok(
        "update-deployment-group",
        *fleets.group_flags(),
        "--alarm-configuration",
        f"enabled=true,alarms=[{{name={ALERT}}}]",
        "--auto-rollback-configuration",
        "enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM",
    )
    config = unique("canary")
    fleets.ok(
        "create-deployment-config",
        "--deployment-config-name",
        config,
        "--minimum-healthy-hosts",
        "type=HOST_COUNT,value=0",
        "--traffic-routing-config",
        # a step long enough that the alert fires well within it
        "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=25,canaryIntervalSeconds=30}",
    )
    before, blue_fleet = current_version(fleets), fleets.live
    shares: set[int] = set()
    try:
        with Traffic(fleets.proxy.url) as traffic:
            deployment = fleets.deploy("v10", config=config)

            def step(number: int) -> bool:
                shift = fleets.app.info(deployment)["trafficShift"]
                if shift.get("step", -1) >= 0:
                    shares.add(shift["greenPercent"])
                return bool(shift.get("step") == number)

            wait_until(lambda: step(0), 60, "the canary step")
            metric.set(1)
            prometheus.wait_alert(ALERT, "firing")
            info = fleets.app.finished(deployment, "Stopped")
            step(0)
            rollback = fleets.app.finished(
                info["rollbackInfo"]["rollbackDeploymentId"], "Succeeded"
            )
        assert traffic.failures == [], traffic.failures
        assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
        assert ALERT in info["errorInformation"]["message"]
        assert shares == {25}  # traffic never moved past the canary
        assert "alarm" in rollback["rollbackInfo"]["rollbackMessage"]
        fleets.expect_serving(before, blue_fleet)  # all of it back on the originals
    finally:
        fleets.ok(
            "update-deployment-group",
            *fleets.group_flags(),
            "--alarm-configuration",
            "enabled=false",
        )
        metric.set(0)
        prometheus.wait_alert(ALERT, "inactive")


def test_terminate_retires_the_originals_after_the_termination_wait(fleets: Fleets) -> None:
    """Last in the module: the originals leave the fleet for good."""
    fleets.configure(
        "terminateBlueInstancesOnDeploymentSuccess={action=TERMINATE,"
        "terminationWaitTimeInMinutes=60}"
    )
    blue_fleet, green_fleet = fleets.live, fleets.idle
    deployment = fleets.deploy("v9")

    def terminating() -> bool:
        return "instanceTerminationWaitTimeStarted" in fleets.app.info(deployment)

    wait_until(terminating, 60, "the termination wait to start")
    assert status(fleets, deployment) == "InProgress"
    fleets.expect_serving("v9", green_fleet)
    fleets.ok(
        "continue-deployment",
        "--deployment-id",
        deployment,
        "--deployment-wait-type",
        "TERMINATION_WAIT",
    )
    fleets.app.finished(deployment, "Succeeded")
    for agent in fleets.members[blue_fleet]:
        info = fleets.ok("get-on-premises-instance", "--instance-name", agent.name)
        assert info["instanceInfo"]["registrationStatus"] == "Deregistered"
    fleets.expect_serving("v9", green_fleet)
