"""AppSpec parsing: valid documents parse; invalid ones fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.appspec import check_against_bundle, parse_appspec, read_appspec, unknown_principals
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
        ({"os": "windows"}, "os windows is not supported"),
        ({"os": "Linux"}, "os must be linux"),
        ({"hooks": {"BeforeInstall": "scripts/x.sh"}}, "hooks.BeforeInstall must be a list"),
        ({"hooks": {"BeforeInstall": [{"timeout": 3}]}}, "hooks.BeforeInstall[0].location"),
        ({"hooks": {"BeforeInstall": [{"location": "a", "timeout": 0}]}}, "timeout"),
        ({"files": [{"source": "app"}]}, "files[0].destination is required"),
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


@pytest.mark.parametrize(
    ("timeout", "seconds"), [("2s", 2), (2.9, 2), (30, 30), (7200, 3600), (None, 3600)]
)
def test_timeout_is_read_as_codedeploy_reads_it(timeout: object, seconds: int) -> None:
    hook = {"location": "a.sh"} if timeout is None else {"location": "a.sh", "timeout": timeout}
    raw = {"version": 0.0, "os": "linux", "hooks": {"BeforeInstall": [hook]}}
    spec = parse_appspec(raw)
    assert spec.hooks["BeforeInstall"][0].timeout_seconds == seconds
    assert any("above 3600" in w for w in spec.warnings) == (timeout == 7200)


@pytest.mark.parametrize("version", ["0.0", "'0.0'", "0"])
def test_version_may_be_written_as_number_or_string(version: str) -> None:
    assert read_appspec(f"version: {version}\nos: linux\n").files == ()


@pytest.mark.parametrize(
    ("written", "mode"),
    [("0644", "0644"), ("'644'", "644"), ("755", "755"), ("0000", "0000"), ("12", "012")],
)
def test_mode_means_what_the_author_wrote(written: str, mode: str) -> None:
    text = f"version: 0.0\nos: linux\npermissions:\n  - object: /opt/a\n    mode: {written}\n"
    assert read_appspec(text).permissions[0].mode == mode


def test_unknown_keys_and_events_are_warnings_not_errors() -> None:
    spec = read_appspec(
        "version: 0.0\nos: linux\nextra: 1\nhooks:\n  MyEvent:\n    - location: a.sh\n"
    )
    assert "MyEvent" in spec.hooks
    assert spec.warnings == (
        "unknown key 'extra' at the top level; ignored",
        "hooks.MyEvent is not a CodeDeploy lifecycle event",
    )


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("hook: {}", "unknown key 'hook' at the top level; did you mean 'hooks'?"),
        (
            "files:\n  - {source: a, destination: /a, Destination: /b}",
            "unknown key 'Destination' in files[0]; did you mean 'destination'?",
        ),
        (
            "hooks:\n  AfterInstall:\n    - {location: a.sh, runAs: app}",
            "unknown key 'runAs' in hooks.AfterInstall[0]; did you mean 'runas'?",
        ),
        (
            "hooks:\n  AfterInstall:\n    - {location: a.sh, sudo: true}",
            "unknown key 'sudo' in hooks.AfterInstall[0]; ignored",
        ),
        (
            "hooks:\n  Validateservice: []",
            "hooks.Validateservice is not a CodeDeploy lifecycle event; did you mean "
            "'ValidateService'?",
        ),
        (
            "permissions:\n  - {object: /a, context: {type: t, rnage: s0}}",
            "unknown key 'rnage' in permissions[0].context; did you mean 'range'?",
        ),
    ],
)
def test_unknown_keys_at_every_level_are_named_with_the_nearest_known_one(
    text: str, warning: str
) -> None:
    assert read_appspec(f"version: 0.0\nos: linux\n{text}\n").warnings == (warning,)


def test_a_yaml_error_names_the_file_line_and_column() -> None:
    with pytest.raises(EventFailed, match=r"appspec\.yaml is not valid YAML at line 4, column 1"):
        read_appspec("version: 0.0\nos: linux\nfiles: [a\n", "appspec.yaml")


def test_paths_in_messages_are_shown_as_written() -> None:
    with pytest.raises(EventFailed) as error:
        read_appspec("version: 0.0\nos: linux\nfiles:\n  - {source: a, destination: 'C:\\app'}\n")
    assert "got 'C:\\app'" in error.value.message  # one backslash, as written


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("u:app:rw", "user:app:rw-"),
        ("user:app:6", "user:app:rw-"),
        ("app:r-x", "user:app:r-x"),
        ("g:web:5", "group:web:r-x"),
        ("m:r", "mask::r--"),
        ("mask::rwx", "mask::rwx"),
        ("d:u:app:7", "default:user:app:rwx"),
        ("default:g::r", "default:group::r--"),
    ],
)
def test_acl_entries_take_codedeploys_forms(entry: str, parsed: str) -> None:
    text = f"version: 0.0\nos: linux\npermissions:\n  - object: /a\n    acls: ['{entry}']\n"
    assert [str(a) for a in read_appspec(text).permissions[0].acls] == [parsed]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("mode: 0988", "mode must be 1-4 octal digits"),
        ("type: [socket]", "type must be a list of file and/or directory"),
        ("acls: ['u::rwx']", r"acls\[0\] 'u::rwx': set the base user entry with mode"),
        ("acls: ['o:app:r']", "other entries have no name"),
        ("acls: ['u:app:rwq']", "permissions must be one octal digit or rwx"),
        ("acls: ['u:a,other:rwx']", "'a,other' is not a user or group name"),
        ("acls: ['x:y:z:w']", r"is not \[d:\]u\|g\|m\|o:\[name:\]perms"),
        ("acls: u:app:r", "acls must be a list"),
        ("context: {name: u}", r"context\.type is required"),
        ("context: {type: 'a b'}", "is not an SELinux identifier"),
        ("context: {type: t, range: s2-s1}", "the high level not below the low"),
        ("context: {type: t, range: 's0:c1024'}", "categories up to c1023"),
    ],
)
def test_bad_permissions_are_rejected_naming_the_key(entry: str, message: str) -> None:
    text = f"version: 0.0\nos: linux\npermissions:\n  - object: /opt/a\n    {entry}\n"
    with pytest.raises(EventFailed, match=message):
        read_appspec(text)


def test_unknown_owners_and_groups_are_all_named_when_asked_not_when_read() -> None:
    spec = read_appspec(
        "version: 0.0\nos: linux\npermissions:\n  - object: /opt/a\n    owner: no-such-user-xyz\n"
        "    group: no-such-group-xyz\n  - object: /opt/b\n    owner: root\n"
        "hooks:\n  AfterInstall:\n    - location: a.sh\n      runas: no-such-user-xyz\n"
    )  # a hook may create them before Install (or before the hook that runs as them)
    assert unknown_principals(spec) == [
        "permissions[0].owner 'no-such-user-xyz' is not a user on this host",
        "permissions[0].group 'no-such-group-xyz' is not a group on this host",
    ]
