"""AppSpec parsing: valid documents parse; invalid ones fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.appspec import check_against_bundle, parse_appspec
from agent.errors import ErrorCode, EventFailed

VALID = """
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/app
hooks:
  BeforeInstall:
    - location: scripts/before.sh
      timeout: 30
  ApplicationStart:
    - location: scripts/start.sh
      runas: root
"""


def test_valid_appspec_parses() -> None:
    spec = parse_appspec(yaml.safe_load(VALID))
    assert spec.files[0].destination == "/opt/app"
    assert spec.hooks["BeforeInstall"][0].timeout_seconds == 30
    assert spec.hooks["ApplicationStart"][0].timeout_seconds == 3600
    assert spec.hooks["ApplicationStart"][0].runas == "root"
    assert spec.file_exists_behavior is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 1.0}, "version"),
        ({"os": "windows"}, "os must be linux"),
        ({"hooks": {"BeforeInstall": "scripts/x.sh"}}, "hooks.BeforeInstall must be a list"),
        ({"hooks": {"BeforeInstall": [{"timeout": 3}]}}, "hooks.BeforeInstall[0].location"),
        ({"hooks": {"BeforeInstall": [{"location": "a", "timeout": 0}]}}, "timeout"),
        ({"files": [{"source": "app"}]}, "files[0] needs source and destination"),
        ({"files": [{"source": "app", "destination": "opt"}]}, "files[0].destination"),
        ({"file_exists_behavior": "overwrite"}, "file_exists_behavior"),
    ],
)
def test_invalid_appspec_names_the_key(change: dict[str, object], message: str) -> None:
    raw = {**yaml.safe_load(VALID), **change}
    with pytest.raises(EventFailed) as error:
        parse_appspec(raw)
    assert error.value.code is ErrorCode.INVALID_APPSPEC
    assert message in error.value.message


def test_paths_missing_from_the_bundle_are_reported_before_install(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/before.sh").write_text("#!/bin/sh\n")
    spec = parse_appspec(yaml.safe_load(VALID))
    with pytest.raises(EventFailed) as error:
        check_against_bundle(spec, tmp_path)
    assert error.value.code is ErrorCode.SCRIPT_MISSING
    assert "hooks.ApplicationStart[0].location 'scripts/start.sh'" in error.value.message
