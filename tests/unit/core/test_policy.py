"""Policy documents: IAM's shape, IAM's evaluation (explicit Deny wins, else any Allow)."""

from __future__ import annotations

import json

import pytest

from services.core.errors import InvalidArgument
from services.core.policy import allowed, parse_document

GROUP_A = "arn:opendeploy:deploy::deploymentgroup:A/prod"
GROUP_B = "arn:opendeploy:deploy::deploymentgroup:B/prod"


def document(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_an_allow_matching_action_and_resource_allows() -> None:
    statements = parse_document(
        document(
            {
                "Effect": "Allow",
                "Action": "deploy:CreateDeployment",
                "Resource": "arn:opendeploy:deploy::deploymentgroup:A/*",
            }
        )
    )
    assert allowed(statements, "deploy:CreateDeployment", GROUP_A)
    assert not allowed(statements, "deploy:CreateDeployment", GROUP_B)
    assert not allowed(statements, "deploy:StopDeployment", GROUP_A)


def test_nothing_matching_is_an_implicit_deny() -> None:
    assert not allowed((), "deploy:GetDeployment", GROUP_A)


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = parse_document(
        document(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "deploy:Create*", "Resource": GROUP_B},
        )
    )
    assert allowed(statements, "deploy:CreateDeployment", GROUP_A)
    assert not allowed(statements, "deploy:CreateDeployment", GROUP_B)


def test_actions_compare_without_case_and_wildcards_match_runs() -> None:
    statements = parse_document(
        document(
            {
                "Effect": "Allow",
                "Action": ["deploy:get*", "deploy:List?pplications"],
                "Resource": "*",
            }
        )
    )
    assert allowed(statements, "deploy:GetDeployment", GROUP_A)
    assert allowed(statements, "deploy:ListApplications", "*")
    assert not allowed(statements, "deploy:StopDeployment", GROUP_A)


def test_resources_compare_with_case() -> None:
    statements = parse_document(
        document({"Effect": "Allow", "Action": "*", "Resource": GROUP_A.lower()})
    )
    assert not allowed(statements, "deploy:GetDeployment", GROUP_A)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("not json", "policyDocument is not JSON"),
        ("[]", "policyDocument must be a JSON object"),
        (json.dumps({"Statement": []}), "policyDocument.Statement"),
        (json.dumps({"Version": "2020-01-01", "Statement": {}}), "policyDocument.Version"),
        (document({"Effect": "Maybe", "Action": "*", "Resource": "*"}), "Statement[0].Effect"),
        (document({"Effect": "Allow", "Resource": "*"}), "Statement[0].Action"),
        (document({"Effect": "Allow", "Action": "rm -rf", "Resource": "*"}), "Statement[0].Action"),
        (document({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::x"}), "Resource"),
        (
            document({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}),
            "unknown key Condition",
        ),
        ("x" * 7000, "longer than"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(text: str, names: str) -> None:
    with pytest.raises(InvalidArgument, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_document(text)
