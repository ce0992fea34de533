"""Users, access keys and policies as IAM shapes them (pure: names, key material, built-ins)."""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from services.core.access import IAM_ARN, policy_arn
from services.core.errors import InvalidArgument
from services.core.policy import Statement, parse_document

USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")
POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
KEY_ID_PREFIX = "ODAK"
"""Access key ids look like AWS's (AKIA + 16): 20 characters, upper case and digits."""
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_LENGTH = 40
ACTIVE = "Active"
ADMINISTRATOR = "AdministratorAccess"
READ_ACTIONS = ["deploy:Get*", "deploy:List*", "deploy:BatchGet*", "deploy:Watch*"]


def _document(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


BUILT_IN: dict[str, str] = {
    ADMINISTRATOR: _document({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    "DeployerAccess": _document(
        {
            "Effect": "Allow",
            "Action": [
                *READ_ACTIONS,
                "deploy:CreateDeployment",
                "deploy:StopDeployment",
                "deploy:ContinueDeployment",
                "deploy:RegisterApplicationRevision",
                "deploy:UploadBundle",
            ],
            "Resource": "*",
        }
    ),
    "ReadOnlyAccess": _document({"Effect": "Allow", "Action": READ_ACTIONS, "Resource": "*"}),
}
"""Policies every server has, attached by arn:opendeploy:iam::policy/NAME. DeployerAccess
deploys and stops in every application; a deployer of given applications gets a created policy
with the same actions and those applications' ARNs (docs/security.md shows one)."""


@dataclass(frozen=True)
class User:
    name: str
    created_at: datetime

    @property
    def arn(self) -> str:
        return f"{IAM_ARN}user/{self.name}"


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    user_name: str
    status: str
    created_at: datetime
    secret: str = ""
    """Only when the key has just been created."""


@dataclass(frozen=True)
class Policy:
    name: str
    document: str
    built_in: bool

    @property
    def arn(self) -> str:
        return policy_arn(self.name)

    @property
    def statements(self) -> tuple[Statement, ...]:
        return parse_document(self.document)


def check_user_name(field: str, value: str) -> str:
    if not USER_NAME.fullmatch(value):
        raise InvalidArgument(f"{field} must be 1-64 letters, digits or +=,.@_-")
    return value


def check_policy_name(field: str, value: str) -> str:
    if not POLICY_NAME.fullmatch(value):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or +=,.@_-")
    return value


def policy_name_of(field: str, arn: str) -> str:
    """The policy an arn:opendeploy:iam::policy/NAME names."""
    prefix = f"{IAM_ARN}policy/"
    if not arn.startswith(prefix):
        raise InvalidArgument(f"{field} must be {prefix}NAME")
    return check_policy_name(field, arn.removeprefix(prefix))


def new_key_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return KEY_ID_PREFIX + "".join(secrets.choice(alphabet) for _ in range(16))


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
