"""The AWS CLI's shorthand and JSON argument forms."""

from __future__ import annotations

import pytest

from deploy.cli.shorthand import parse_list, parse_structure
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
