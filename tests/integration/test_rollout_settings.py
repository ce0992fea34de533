"""What a deployment config, a group's tag filters and tag sets, and listing decide, on three
real agents: how far a rollout goes at once, which instances a deployment touches, and which
deployments a listing shows."""

from __future__ import annotations

import itertools
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


def _interval(target: dict[str, object]) -> tuple[str, str]:
    events = target["lifecycleEvents"]
    assert isinstance(events, list)
    return events[0]["startTime"], events[-1]["endTime"]


def test_custom_configs_are_managed_and_bound_the_rollout(running: Cluster, tmp_path: Path) -> None:
    name = unique("two-healthy")
    created = running.cli(
        "create-deployment-config",
        "--deployment-config-name",
        name,
        "--minimum-healthy-hosts",
        "type=HOST_COUNT,value=2",
    )
    assert created.returncode == 0, created.stderr
    info = running.cli("get-deployment-config", "--deployment-config-name", name).json()
    assert info["deploymentConfigInfo"]["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 2}
    listed = running.cli("list-deployment-configs").json()["deploymentConfigsList"]
    assert {name, "CodeDeployDefault.OneAtATime", "CodeDeployDefault.AllAtOnce"} <= set(listed)

    app, group = unique("configured"), "web"
    assert running.cli("create-application", "--application-name", app).returncode == 0
    assert (
        running.cli(
            "create-deployment-group",
            "--application-name",
            app,
            "--deployment-group-name",
            group,
            "--deployment-config-name",
            name,
            "--on-premises-instance-tag-filters",
            "Key=cluster,Value=node,Type=KEY_AND_VALUE",
        ).returncode
        == 0
    )
    refused = running.cli("delete-deployment-config", "--deployment-config-name", name)
    assert refused.returncode != 0
    assert "FAILED_PRECONDITION" in refused.stderr and "in use" in refused.stderr

    bundle = tmp_path / "bundle"
    (bundle / "app").mkdir(parents=True)
    (bundle / "app/file.txt").write_text("x")
    (bundle / "appspec.yml").write_text(
        f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/{app}\n"
    )
    digest = push(running, app, bundle)
    result = running.cli(
        "create-deployment",
        "--application-name",
        app,
        "--deployment-group-name",
        group,
        "--registry-location",
        f"digest={digest},bundleType=zip",
    )
    deployment_id = result.json()["deploymentId"]
    assert (
        running.cli("wait", "deployment-successful", "--deployment-id", deployment_id).returncode
        == 0
    )
    # With 3 instances and 2 that must stay healthy, instances go strictly one at a time:
    # no two targets' intervals overlap (checked from the event record).
    intervals = sorted(
        _interval(
            running.cli(
                "get-deployment-target", "--deployment-id", deployment_id, "--target-id", a.name
            ).json()["deploymentTarget"]["instanceTarget"]
        )
        for a in running.agents
    )
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [
                "create-deployment-config",
                "--deployment-config-name",
                "CodeDeployDefault.Mine",
                "--minimum-healthy-hosts",
                "type=HOST_COUNT,value=1",
            ],
            "is reserved",
        ),
        (
            [
                "create-deployment-config",
                "--deployment-config-name",
                "pct",
                "--minimum-healthy-hosts",
                "type=FLEET_PERCENT,value=100",
            ],
            "0-99",
        ),
        (
            [
                "create-deployment-config",
                "--deployment-config-name",
                "bad",
                "--minimum-healthy-hosts",
                "type=MOST,value=1",
            ],
            "HOST_COUNT or FLEET_PERCENT",
        ),
        (
            ["delete-deployment-config", "--deployment-config-name", "CodeDeployDefault.AllAtOnce"],
            "cannot be deleted",
        ),
        (["get-deployment-config", "--deployment-config-name", "nope"], "'nope' does not exist"),
    ],
)
def test_bad_deployment_config_requests_get_one_clear_line(
    running: Cluster, args: list[str], expected: str
) -> None:
    result = running.cli(*args)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr


def _targets_of(running: Cluster, app: str, group: str, digest: str) -> tuple[str, list[str]]:
    deployment_id = deploy(running, app, group, digest, "CodeDeployDefault.AllAtOnce")
    running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
    targets = running.cli("list-deployment-targets", "--deployment-id", deployment_id).json()
    return deployment_id, sorted(targets["targetIds"])


def test_tag_sets_and_flat_filters_select_instances_and_groups_can_be_deleted(
    running: Cluster, tmp_path: Path
) -> None:
    app = unique("tags")
    assert running.cli("create-application", "--application-name", app).returncode == 0
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    digest = push(running, app, bundle)
    tag_set = (
        '{"onPremisesTagSetList": [[{"Key": "cluster", "Value": "node", '
        '"Type": "KEY_AND_VALUE"}], [{"Key": "name", "Value": "node-1", '
        '"Type": "KEY_AND_VALUE"}, {"Key": "name", "Value": "node-2", '
        '"Type": "KEY_AND_VALUE"}]]}'
    )
    groups = {
        "set": ["--on-premises-tag-set", tag_set],
        "flat": [
            "--on-premises-instance-tag-filters",
            "Key=name,Value=node-1,Type=KEY_AND_VALUE",
            "Key=name,Value=node-3,Type=KEY_AND_VALUE",
        ],
        "none": [],
    }
    for group, flags in groups.items():
        created = running.cli(
            "create-deployment-group",
            "--application-name",
            app,
            "--deployment-group-name",
            group,
            *flags,
        )
        assert created.returncode == 0, created.stderr
    info = running.cli(
        "get-deployment-group", "--application-name", app, "--deployment-group-name", "set"
    ).json()["deploymentGroupInfo"]
    assert len(info["onPremisesTagSet"]["onPremisesTagSetList"]) == 2

    assert _targets_of(running, app, "set", digest)[1] == ["node-1", "node-2"]  # AND of ORs
    assert _targets_of(running, app, "flat", digest)[1] == ["node-1", "node-3"]  # OR
    deployment_id, targets = _targets_of(running, app, "none", digest)
    assert targets == []  # a group without filters never targets the whole fleet
    info = running.cli("get-deployment", "--deployment-id", deployment_id).json()
    assert info["deploymentInfo"]["errorInformation"]["code"] == "NO_INSTANCES"

    assert (
        running.cli(
            "delete-deployment-group", "--application-name", app, "--deployment-group-name", "flat"
        ).returncode
        == 0
    )
    listed = running.cli("list-deployment-groups", "--application-name", app).json()
    assert listed["deploymentGroups"] == ["none", "set"]
    both = running.cli(
        "create-deployment-group",
        "--application-name",
        app,
        "--deployment-group-name",
        "both",
        *groups["set"],
        *groups["flat"],
    )
    assert both.returncode != 0 and "cannot both be given" in both.stderr


def test_list_deployments_pages_newest_first_and_filters_by_time(
    running: Cluster, tmp_path: Path
) -> None:
    app = unique("paged")
    setup_app(running, app, "web", "Key=cluster,Value=node,Type=KEY_AND_VALUE")
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    digest = push(running, app, bundle)
    created = []
    for _ in range(3):
        created.append(deploy(running, app, "web", digest, "CodeDeployDefault.AllAtOnce"))
        assert (
            running.cli("wait", "deployment-successful", "--deployment-id", created[-1]).returncode
            == 0
        )
    scope = ["--application-name", app, "--deployment-group-name", "web"]
    everything = running.cli("list-deployments", *scope).json()
    assert everything == {"deployments": created[::-1]}

    first = running.cli("list-deployments", *scope, "--max-items", "2").json()
    assert first["deployments"] == created[:0:-1]
    rest = running.cli("list-deployments", *scope, "--starting-token", first["NextToken"]).json()
    assert rest == {"deployments": created[:1]}

    future = running.cli(
        "list-deployments", *scope, "--create-time-range", "start=2999-01-01T00:00:00+00:00"
    ).json()
    assert future == {"deployments": []}
    past = running.cli("list-deployments", *scope, "--create-time-range", "end=2000-01-01").json()
    assert past == {"deployments": []}
    bad = running.cli("list-deployments", *scope, "--starting-token", "bm9wZQ==")
    assert bad.returncode != 0 and "nextToken" in bad.stderr
