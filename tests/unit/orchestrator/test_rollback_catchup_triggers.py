"""Pure rules around a deployment's end: rollback, catch-up targets, trigger retries, updates."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.core.revision import RevisionLocation, RevisionType
from services.core.tags import Tag, TagFilter, TagFilterType
from services.orchestrator.catchup import outdated_instances
from services.orchestrator.domain import (
    Creator,
    Deployment,
    DeploymentErrorCode,
    ErrorInformation,
    InstanceRevision,
)
from services.orchestrator.groups import (
    AutoRollbackConfig,
    AutoRollbackEvent,
    DeploymentGroup,
    GroupChange,
)
from services.orchestrator.notifications import RETRY_DELAYS_SECONDS, retry_at
from services.orchestrator.rollback import rollback_reason
from services.orchestrator.states import DeploymentStatus

NOW = datetime(2026, 11, 28, tzinfo=UTC)
V1 = RevisionLocation(RevisionType.REGISTRY, digest="sha256:" + "1" * 64)
V2 = RevisionLocation(RevisionType.REGISTRY, digest="sha256:" + "2" * 64)
FAILURE = AutoRollbackEvent.DEPLOYMENT_FAILURE
ON_REQUEST = AutoRollbackEvent.DEPLOYMENT_STOP_ON_REQUEST


def deployment(
    events: frozenset[AutoRollbackEvent] = frozenset(),
    enabled: bool = True,
    creator: Creator = Creator.USER,
    roll_back_on_stop: bool = False,
) -> Deployment:
    return Deployment(
        id="d-1",
        application_name="a",
        group_name="g",
        group_id="gid",
        config_name="CodeDeployDefault.OneAtATime",
        minimum_healthy=0,
        status=DeploymentStatus.IN_PROGRESS,
        revision=V2,
        description="",
        creator=creator,
        file_exists_behavior=None,
        ignore_application_stop_failures=False,
        created_at=NOW,
        auto_rollback=AutoRollbackConfig(enabled, events),
        roll_back_on_stop=roll_back_on_stop,
    )


@pytest.mark.parametrize(
    ("spec", "status", "rolls_back"),
    [
        (deployment(frozenset({FAILURE})), DeploymentStatus.FAILED, True),
        (deployment(frozenset({FAILURE}), enabled=False), DeploymentStatus.FAILED, False),
        (deployment(frozenset({ON_REQUEST})), DeploymentStatus.FAILED, False),
        (deployment(frozenset({FAILURE})), DeploymentStatus.SUCCEEDED, False),
        (deployment(roll_back_on_stop=True), DeploymentStatus.STOPPED, True),
        (deployment(frozenset({FAILURE})), DeploymentStatus.STOPPED, False),
        # a rollback is never rolled back
        (
            deployment(frozenset({FAILURE}), creator=Creator.ROLLBACK),
            DeploymentStatus.FAILED,
            False,
        ),
    ],
)
def test_rollback_follows_the_auto_rollback_configuration(
    spec: Deployment, status: DeploymentStatus, rolls_back: bool
) -> None:
    assert (rollback_reason(spec, status) is not None) is rolls_back


def test_outdated_instances_are_those_not_on_the_revision() -> None:
    before, after = NOW - timedelta(hours=1), NOW + timedelta(seconds=1)
    revisions = {
        "current": InstanceRevision(V1, after),
        "missed-it": InstanceRevision(V2, before),  # not in the group when V1 was deployed
        "failed-on-it": InstanceRevision(V2, after),  # V1 (or later) was tried there
        "never-succeeded": InstanceRevision(None, after),
    }
    names = ["new", "current", "missed-it", "failed-on-it", "never-succeeded"]
    # catch-up of a group whose last success (V1) was created at NOW
    assert outdated_instances(names, revisions, V1, NOW) == ["new", "missed-it"]
    # --update-outdated-instances-only: everyone not on the revision
    assert outdated_instances(names, revisions, V1) == [
        "new",
        "missed-it",
        "failed-on-it",
        "never-succeeded",
    ]


def test_trigger_retries_back_off_then_give_up() -> None:
    delays = [retry_at(n, NOW) for n in range(1, len(RETRY_DELAYS_SECONDS) + 2)]
    assert delays[0] == NOW + timedelta(seconds=1)
    assert delays[1] == NOW + timedelta(seconds=2)
    given = [d for d in delays if d is not None]
    assert all(a < b for a, b in itertools.pairwise(given))
    assert delays[-1] is None


def test_group_change_replaces_only_the_fields_given() -> None:
    group = DeploymentGroup(
        id="gid",
        application_name="a",
        name="g",
        config_name="CodeDeployDefault.OneAtATime",
        tag_filters=(TagFilter("env", "prod", TagFilterType.KEY_AND_VALUE),),
        created_at=NOW,
    )
    renamed = GroupChange(new_name="h").apply(group)
    assert (renamed.name, renamed.tag_filters, renamed.config_name) == (
        "h",
        group.tag_filters,
        group.config_name,
    )
    cleared = GroupChange(tag_filters=()).apply(group)
    assert cleared.tag_filters == () and cleared.name == "g"


def test_a_group_matches_an_instance_by_its_filters_or_tag_set() -> None:
    def f(key: str, value: str) -> TagFilter:
        return TagFilter(key, value, TagFilterType.KEY_AND_VALUE)

    flat = DeploymentGroup("g", "a", "g", "c", (f("env", "prod"), f("role", "web")), NOW)
    tag_set = DeploymentGroup(
        "g",
        "a",
        "g",
        "c",
        (),
        NOW,
        tag_set=((f("env", "prod"),), (f("role", "web"), f("role", "api"))),
    )
    web_prod, web_dev = (
        [Tag("env", "prod"), Tag("role", "web")],
        [Tag("env", "dev"), Tag("role", "web")],
    )
    assert flat.matches(web_prod) and flat.matches(web_dev)  # any filter
    assert tag_set.matches(web_prod) and not tag_set.matches(web_dev)  # every group
    assert not DeploymentGroup("g", "a", "g", "c", (), NOW).matches(web_prod)


def test_a_stop_by_an_alarm_says_so_in_its_rollback_reason() -> None:
    stopped = dataclasses.replace(
        deployment(roll_back_on_stop=True),
        error=ErrorInformation(DeploymentErrorCode.ALARM_ACTIVE, "alarm fired"),
    )
    assert rollback_reason(stopped, DeploymentStatus.STOPPED) == (
        "Automatic rollback after an alarm stopped the deployment"
    )
