"""Alarm-gated deployments with a real Prometheus: an alerting rule on a metric the test
controls stops a running deployment (ALARM_ACTIVE) and rolls it back; a Prometheus nobody can
read fails a deployment unless ignorePollAlarmFailure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, cluster, open_gate
from tests.integration.apps import App, bundle, gated, hook_processes, installed, wait_started
from tests.processes import free_port, wait_until
from tests.prometheus import ControlledMetric, Prometheus, start_prometheus

AGENTS = 2
ALERT = "OpenDeployTestErrors"
RULES = {
    "groups": [
        {
            "name": "test",
            "rules": [{"alert": ALERT, "expr": "opendeploy_test_errors > 0", "for": "0s"}],
        }
    ]
}
WATCHED = f"enabled=true,alarms=[{{name={ALERT}}}]"
POLL = {"OPENDEPLOY_ALARM_POLL_SECONDS": "1"}


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
    tmp_path_factory: pytest.TempPathFactory, database_url: str, prometheus: Prometheus
) -> Iterator[Cluster]:
    env = {"OPENDEPLOY_PROMETHEUS_URL": prometheus.url, **POLL}
    with cluster(tmp_path_factory.mktemp("cluster"), database_url, AGENTS, "al", env) as running:
        yield running


@pytest.fixture
def alarm_off(metric: ControlledMetric, prometheus: Prometheus) -> Iterator[ControlledMetric]:
    """The metric at 0 and the alert inactive before and after the test."""
    metric.set(0)
    prometheus.wait_alert(ALERT, "inactive")
    yield metric
    metric.set(0)
    prometheus.wait_alert(ALERT, "inactive")


def test_a_firing_alarm_stops_a_one_at_a_time_deployment_and_rolls_it_back(
    running: Cluster, prometheus: Prometheus, alarm_off: ControlledMetric, tmp_path: Path
) -> None:
    app = App(
        running,
        "--alarm-configuration",
        WATCHED,
        "--auto-rollback-configuration",
        "enabled=true,events=DEPLOYMENT_STOP_ON_ALARM",
    )
    good = app.push(bundle(tmp_path / "v1", "1", app.dest))
    first = app.finished(app.deploy(good, "CodeDeployDefault.OneAtATime"), "Succeeded")
    assert first["alarmConfiguration"]["alarms"] == [{"name": ALERT}]
    source, gate, started = gated(app, tmp_path, "2")
    deployment_id = app.deploy(app.push(source), "CodeDeployDefault.OneAtATime")
    wait_started(started, 1)  # the first host is installing; the second waits its turn

    alarm_off.set(1)
    prometheus.wait_alert(ALERT, "firing")
    info = app.finished(deployment_id, "Stopped")  # the running hook is killed
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert ALERT in info["errorInformation"]["message"]
    overview = info["deploymentOverview"]
    assert (overview["Failed"], overview["Skipped"]) == (1, AGENTS - 1)
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    wait_until(lambda: not hook_processes(gate), 10, "the stopped hook's processes to be gone")
    rollback = app.finished(rollback_id, "Succeeded")  # a rollback watches no alarm
    assert "alarm" in rollback["rollbackInfo"]["rollbackMessage"]
    assert rollback["revision"]["registryLocation"]["digest"] == good
    assert installed(app) == ["1"] * AGENTS


def test_an_override_without_alarms_lets_a_deployment_through_a_firing_alarm(
    running: Cluster, prometheus: Prometheus, alarm_off: ControlledMetric, tmp_path: Path
) -> None:
    app = App(running, "--alarm-configuration", WATCHED)
    alarm_off.set(1)
    prometheus.wait_alert(ALERT, "firing")
    digest = app.push(bundle(tmp_path / "v1", "1", app.dest))
    override = ("--override-alarm-configuration", "enabled=false")
    info = app.finished(app.deploy(digest, "CodeDeployDefault.OneAtATime", *override), "Succeeded")
    assert info["alarmConfiguration"]["enabled"] is False
    watched = app.finished(app.deploy(digest, "CodeDeployDefault.OneAtATime"), "Stopped")
    assert watched["errorInformation"]["code"] == "ALARM_ACTIVE"


@pytest.fixture(scope="module")
def unreadable(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    """A cluster whose prometheus_url answers nothing."""
    env = {"OPENDEPLOY_PROMETHEUS_URL": f"http://127.0.0.1:{free_port()}", **POLL}
    workdir = tmp_path_factory.mktemp("unreadable")
    with cluster(workdir, database_url, 1, "un", env) as running:
        yield running


def test_an_unreadable_prometheus_fails_a_deployment_unless_poll_failures_are_ignored(
    unreadable: Cluster, tmp_path: Path
) -> None:
    strict = App(unreadable, "--alarm-configuration", WATCHED)
    (tmp_path / "strict").mkdir()
    source, gate, started = gated(strict, tmp_path / "strict", "1")
    deployment_id = strict.deploy(strict.push(source), "CodeDeployDefault.OneAtATime")
    wait_started(started, 1)
    info = strict.finished(deployment_id, "Failed")  # the gate is never opened
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert "could not be read 3 times in a row" in info["errorInformation"]["message"]
    wait_until(lambda: not hook_processes(gate), 10, "the failed deployment's hook to be ended")

    lenient = App(
        unreadable,
        "--alarm-configuration",
        f"enabled=true,ignorePollAlarmFailure=true,alarms=[{{name={ALERT}}}]",
    )
    (tmp_path / "lenient").mkdir()
    source, gate, started = gated(lenient, tmp_path / "lenient", "1")
    deployment_id = lenient.deploy(lenient.push(source), "CodeDeployDefault.OneAtATime")
    wait_started(started, 1)

    def failed_readings() -> int:
        lines = unreadable.server.log.read_text().splitlines()
        return sum("alarms unreadable" in line and deployment_id in line for line in lines)

    wait_until(lambda: failed_readings() >= 4, 30, "more failed alarm readings than allowed")
    open_gate(gate, 1)
    lenient.finished(deployment_id, "Succeeded")
