"""permissions applied as CodeDeploy applies them: what matches, in which order, and errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.appspec import read_appspec
from agent.errors import EventFailed
from agent.install import install
from agent.permissions import acl_entries

HEAD = "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: /opt/app\n"


def bundle(root: Path) -> Path:
    for name in ("app/run.sh", "app/lib/a.py", "app/lib/b.txt", "app/conf/c.conf"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
        (root / name).chmod(0o644)
    return root


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))[2:]


def run(tmp_path: Path, permissions: str) -> Path:
    spec = read_appspec(HEAD + "permissions:\n" + permissions)
    prefix = tmp_path / "prefix"
    install(spec, bundle(tmp_path / "b"), str(prefix), tmp_path / "cleanup", None)
    return prefix / "opt/app"


def test_double_star_sets_every_file_below_the_directory(tmp_path: Path) -> None:
    app = run(tmp_path, "  - object: /opt/app\n    mode: 0600\n    type: [file]\n")
    assert {mode(p) for p in app.rglob("*") if p.is_file()} == {"600"}
    assert mode(app / "lib") != "600"  # type file only: directories untouched


def test_pattern_matches_direct_children_only(tmp_path: Path) -> None:
    app = run(tmp_path, "  - object: /opt/app\n    pattern: '*.sh'\n    mode: 0755\n")
    assert mode(app / "run.sh") == "755"
    assert mode(app / "lib/a.py") == "644"


def test_except_excludes_direct_children(tmp_path: Path) -> None:
    app = run(
        tmp_path,
        "  - object: /opt/app/lib\n    except: ['b.*']\n    mode: 0640\n    type: [file]\n",
    )
    assert mode(app / "lib/a.py") == "640"
    assert mode(app / "lib/b.txt") == "644"


def test_directories_created_by_the_install_take_directory_modes(tmp_path: Path) -> None:
    app = run(tmp_path, "  - object: /opt/app\n    mode: 0750\n    type: [directory]\n")
    assert mode(app / "lib") == "750"
    assert mode(app / "conf") == "750"
    assert mode(app / "run.sh") == "644"


def test_a_file_object_sets_that_file(tmp_path: Path) -> None:
    app = run(tmp_path, "  - object: /opt/app/run.sh\n    mode: 0700\n")
    assert mode(app / "run.sh") == "700"


def test_the_same_path_from_two_entries_is_an_error_before_anything_is_copied(
    tmp_path: Path,
) -> None:
    with pytest.raises(EventFailed, match=r"set by permissions\[0\] and permissions\[1\]"):
        run(
            tmp_path,
            "  - object: /opt/app\n    mode: 0600\n  - object: /opt/app/run.sh\n    mode: 0700\n",
        )
    assert not (tmp_path / "prefix").exists()


def test_owner_and_group_are_applied_as_root_and_refused_clearly_otherwise(
    tmp_path: Path,
) -> None:
    entry = "  - object: /opt/app/run.sh\n    owner: nobody\n    group: nogroup\n"
    if os.geteuid() != 0:
        with pytest.raises(EventFailed, match=r"owner 'nobody' .* needs the agent to run as root"):
            run(tmp_path, entry)
        return
    app = run(tmp_path, entry)
    assert ((app / "run.sh").stat().st_uid, (app / "run.sh").stat().st_gid) == (65534, 65534)


@pytest.mark.parametrize(
    ("acls", "expected"),
    [
        (  # a named entry needs a mask: the mode's group digit
            ["u:nobody:rw"],
            ["user::rw-", "group::r--", "other::---", "user:nobody:rw-", "mask::r--"],
        ),
        (["m::rwx", "g:nogroup:r"], ["user::rw-", "group::r--", "other::---", "mask::rwx"]),
        (  # default entries get their missing base entries and a mask from the default group
            ["d:g::rx", "d:u:nobody:rwx"],
            ["default:group::r-x", "default:user:nobody:rwx", "default:user::rw-"],
        ),
    ],
)
def test_acls_are_completed_from_the_mode_as_codedeploy_does(
    tmp_path: Path, acls: list[str], expected: list[str]
) -> None:
    path = tmp_path / "f"
    path.write_text("")
    path.chmod(0o640)
    spec = read_appspec(
        f"version: 0.0\nos: linux\npermissions:\n  - object: /f\n    acls: {acls}\n"
    )
    entries = acl_entries(path, spec.permissions[0].acls)
    assert set(expected) <= set(entries)
    assert len(entries) == len(set(entries))
    if any(a.startswith("d") for a in acls):
        assert "default:mask::r-x" in entries and "default:other::---" in entries


def test_a_missing_tool_is_named_before_anything_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no setfacl, no semanage here
    for entry, tool in (
        ("acls: [u:nobody:r]", "needs setfacl"),
        ("context: {type: t}", "needs semanage"),
    ):
        with pytest.raises(EventFailed, match=tool):
            run(tmp_path, f"  - object: /opt/app\n    {entry}\n")
        assert not (tmp_path / "prefix").exists()
