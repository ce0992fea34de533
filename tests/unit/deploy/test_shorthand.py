"""The AWS CLI's shorthand and JSON argument forms."""

from __future__ import annotations

import pytest

from deploy.cli.shorthand import parse_list, parse_nested, parse_structure
from deploy.errors import ClientError


def test_shorthand_and_json_give_the_same_structure() -> None:
    short = parse_structure("--x", "Key=env,Value=prod,Type=KEY_AND_VALUE")
    assert short == {"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}
    assert parse_structure("--x", '{"Key": "env"}') == {"Key": "env"}


def test_values_may_contain_commas() -> None:
    assert parse_structure("--x", "digest=a,b,bundleType=zip") == {
        "digest": "a,b",
        "bundleType": "zip",
    }


def test_list_forms() -> None:
    assert parse_list("--t", ["Key=a,Value=1", "Key=b,Value=2"])[1] == {"Key": "b", "Value": "2"}
    assert parse_list("--t", ['[{"Key": "a"}]']) == [{"Key": "a"}]


@pytest.mark.parametrize("text", ["novalue", "{not json", "=x"])
def test_bad_input_names_the_flag(text: str) -> None:
    with pytest.raises(ClientError, match=r"^--flag"):
        parse_structure("--flag", text)


def test_nested_shorthand_and_json_give_the_same_structure() -> None:
    shorthand = (
        "deploymentReadyOption={actionOnTimeout=STOP_DEPLOYMENT,waitTimeInSeconds=30},"
        "tagFilters=[{Key=fleet,Value=green},{Key=role,Value=web}]"
    )
    expected = {
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInSeconds": "30"},
        "tagFilters": [{"Key": "fleet", "Value": "green"}, {"Key": "role", "Value": "web"}],
    }
    assert parse_nested("--x", shorthand) == expected
    assert parse_nested("--x", '{"a": {"b": 1}}') == {"a": {"b": 1}}


@pytest.mark.parametrize("text", ["a={b=1", "a=[{b=1}", "=1", "a"])
def test_broken_nested_shorthand_names_the_flag_and_the_place(text: str) -> None:
    with pytest.raises(ClientError) as error:
        parse_nested("--blue-green-deployment-configuration", text)
    assert str(error.value).startswith("--blue-green-deployment-configuration: ")
    assert "at character" in str(error.value)


def test_alarm_configuration_in_the_aws_clis_shorthand_and_json() -> None:
    from deploy.cli.groups import alarms

    short = alarms("--alarm-configuration", "enabled=true,alarms=[{name=A},{name=B}]")
    json_form = alarms(
        "--alarm-configuration",
        '{"enabled": true, "ignorePollAlarmFailure": false, "alarms": [{"name": "A"}, '
        '{"name": "B"}]}',
    )
    assert short == json_form
    assert [a.name for a in short.alarms] == ["A", "B"] and short.enabled
    with pytest.raises(ClientError, match="--alarm-configuration: ignorePollAlarmFailure must"):
        alarms("--alarm-configuration", "enabled=true,ignorePollAlarmFailure=maybe")
