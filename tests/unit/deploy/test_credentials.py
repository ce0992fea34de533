"""Credentials are found as the AWS CLI finds them: profile, environment, default profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.credentials import Credentials, load_credentials
from deploy.errors import ClientError

FILE = """
[default]
deploy_access_key_id = ODAKDEFAULT
deploy_secret_access_key = default-secret

[ops]
deploy_access_key_id = ODAKOPS
deploy_secret_access_key = ops-secret

[half]
deploy_access_key_id = ODAKHALF
"""


@pytest.fixture
def shared(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "credentials"
    path.write_text(FILE)
    return {"DEPLOY_SHARED_CREDENTIALS_FILE": str(path)}


def test_the_environment_comes_before_the_default_profile(shared: dict[str, str]) -> None:
    env = {**shared, "DEPLOY_ACCESS_KEY_ID": "ODAKENV", "DEPLOY_SECRET_ACCESS_KEY": "env"}
    assert load_credentials(None, env) == Credentials("ODAKENV", "env")
    assert load_credentials(None, shared) == Credentials("ODAKDEFAULT", "default-secret")


def test_a_named_profile_comes_before_the_environment(shared: dict[str, str]) -> None:
    env = {**shared, "DEPLOY_ACCESS_KEY_ID": "ODAKENV", "DEPLOY_SECRET_ACCESS_KEY": "env"}
    assert load_credentials("ops", env) == Credentials("ODAKOPS", "ops-secret")
    assert load_credentials(None, {**env, "DEPLOY_PROFILE": "ops"}).access_key_id == "ODAKOPS"


def test_no_credentials_anywhere_is_none(tmp_path: Path) -> None:
    env = {"DEPLOY_SHARED_CREDENTIALS_FILE": str(tmp_path / "missing")}
    assert load_credentials(None, env) is None


@pytest.mark.parametrize(
    ("profile", "env", "names"),
    [
        ("nope", {}, "profile 'nope' is not in"),
        ("half", {}, "profile 'half'"),
        (None, {"DEPLOY_ACCESS_KEY_ID": "ODAKENV"}, "both DEPLOY_ACCESS_KEY_ID"),
    ],
)
def test_incomplete_credentials_are_refused_in_one_line(
    shared: dict[str, str], profile: str | None, env: dict[str, str], names: str
) -> None:
    with pytest.raises(ClientError, match=names):
        load_credentials(profile, {**shared, **env})


def test_the_secret_is_not_in_the_repr() -> None:
    assert "shh" not in repr(Credentials("ODAK", "shh"))
