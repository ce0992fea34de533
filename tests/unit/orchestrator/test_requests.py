"""Requests read as checked domain objects (requests.py): UpdateDeploymentGroup changes only
what it gives, as CreateDeploymentGroup reads it; every refusal names its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from deploy.v1 import common_pb2
from deploy.v1 import orchestrator_pb2 as pb
from services.core.errors import InvalidArgument
from services.core.tags import TagFilter, TagFilterType
from services.orchestrator.groups import DeploymentStyle, GroupChange
from services.orchestrator.requests import (
    deployment_id_from_proto,
    group_change_from_proto,
    group_from_proto,
    listed_group_from_proto,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WEB = common_pb2.TagFilter(key="role", value="web", type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE)


def update(**fields: object) -> pb.UpdateDeploymentGroupRequest:
    return pb.UpdateDeploymentGroupRequest(
        application_name="app", current_deployment_group_name="web", **fields
    )


def test_an_update_that_gives_nothing_changes_nothing() -> None:
    assert group_change_from_proto(update()) == GroupChange()


def test_an_update_reads_each_field_it_gives_and_leaves_the_rest() -> None:
    change = group_change_from_proto(
        update(
            new_deployment_group_name="web-2",
            on_premises_instance_tag_filters=pb.TagFilterList(filters=[WEB]),
            fetch_revisions_through_registry=False,
            load_balancer_info=pb.LoadBalancerInfo(),  # given empty: clears the list
        )
    )
    assert change == GroupChange(
        new_name="web-2",
        tag_filters=(TagFilter("role", "web", TagFilterType.KEY_AND_VALUE),),
        fetch_through_registry=False,
        target_groups=(),
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"new_deployment_group_name": ""}, "newDeploymentGroupName"),
        ({"deployment_config_name": "bad name!"}, "deploymentConfigName"),
        (
            {
                "on_premises_instance_tag_filters": pb.TagFilterList(filters=[WEB]),
                "on_premises_tag_set": pb.TagSet(groups=[pb.TagFilterGroup(filters=[WEB])]),
            },
            "onPremisesInstanceTagFilters and onPremisesTagSet",
        ),
        (
            {"on_premises_tag_set": pb.TagSet(groups=[pb.TagFilterGroup()])},
            "onPremisesTagSet",
        ),
        (
            {
                "trigger_configurations": pb.TriggerConfigList(
                    triggers=[pb.TriggerConfig(trigger_name="t", trigger_target_url="ftp://x")]
                )
            },
            "triggerConfigurations[0].triggerTargetUrl",
        ),
    ],
)
def test_an_update_refuses_a_bad_field_by_name(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(field)):
        group_change_from_proto(update(**fields))


def test_a_created_group_is_read_with_its_defaults_and_checked() -> None:
    group = group_from_proto(
        pb.CreateDeploymentGroupRequest(
            application_name="app",
            deployment_group_name="web",
            on_premises_instance_tag_filters=[WEB],
        ),
        NOW,
    )
    assert (group.name, group.config_name, group.created_at) == (
        "web",
        "CodeDeployDefault.OneAtATime",
        NOW,
    )
    assert group.style == DeploymentStyle()
    # a rule across fields (the group's own check) is applied as it is read
    blue_green = pb.DeploymentStyle(
        deployment_type=pb.DEPLOYMENT_TYPE_BLUE_GREEN,
        deployment_option=pb.DEPLOYMENT_OPTION_WITHOUT_TRAFFIC_CONTROL,
    )
    with pytest.raises(InvalidArgument, match=re.escape("deploymentStyle.deploymentOption")):
        group_from_proto(
            pb.CreateDeploymentGroupRequest(
                application_name="app", deployment_group_name="web", deployment_style=blue_green
            ),
            NOW,
        )


@pytest.mark.parametrize("value", ["", "d-123", "x-ABCDEFGHI", "d-ABCDEFGHI\n"])
def test_a_deployment_id_is_checked_by_its_form(value: str) -> None:
    with pytest.raises(InvalidArgument, match="deploymentId"):
        deployment_id_from_proto(value)
    assert deployment_id_from_proto("d-ABCDEFGH1") == "d-ABCDEFGH1"


def test_deployments_are_listed_for_one_group_or_every_group() -> None:
    assert listed_group_from_proto(pb.ListDeploymentsRequest()) is None
    one = pb.ListDeploymentsRequest(application_name="app", deployment_group_name="web")
    assert listed_group_from_proto(one) == ("app", "web")
    with pytest.raises(InvalidArgument, match="given together"):
        listed_group_from_proto(pb.ListDeploymentsRequest(application_name="app"))
