"""Install: files land under the prefix, the previous install is cleaned up, DISALLOW protects."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.appspec import AppSpec, FileMapping
from agent.errors import EventFailed
from agent.install import install


def bundle(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def spec(behavior: str | None = None) -> AppSpec:
    return AppSpec(
        (FileMapping("app", "/opt/app"), FileMapping("conf/a.conf", "/etc/app")), {}, behavior
    )


def test_install_copies_directory_contents_and_single_files(tmp_path: Path) -> None:
    archive = bundle(tmp_path / "a", {"app/x.py": "x", "app/lib/y.py": "y", "conf/a.conf": "c"})
    prefix = tmp_path / "prefix"
    install(spec(), archive, str(prefix), tmp_path / "cleanup", None)
    assert (prefix / "opt/app/x.py").read_text() == "x"
    assert (prefix / "opt/app/lib/y.py").read_text() == "y"
    assert (prefix / "etc/app/a.conf").read_text() == "c"


def test_second_install_removes_files_the_new_revision_lacks(tmp_path: Path) -> None:
    prefix, cleanup = tmp_path / "prefix", tmp_path / "cleanup"
    first = bundle(tmp_path / "a", {"app/old.py": "o", "app/keep.py": "1", "conf/a.conf": "c"})
    install(spec(), first, str(prefix), cleanup, None)
    (prefix / "opt/app/hook-written.txt").write_text("mine")
    second = bundle(tmp_path / "b", {"app/keep.py": "2", "conf/a.conf": "c"})
    install(spec(), second, str(prefix), cleanup, None)
    assert not (prefix / "opt/app/old.py").exists()
    assert (prefix / "opt/app/keep.py").read_text() == "2"
    assert (prefix / "opt/app/hook-written.txt").read_text() == "mine"


@pytest.mark.parametrize(("behavior", "expected"), [("OVERWRITE", "new"), ("RETAIN", "foreign")])
def test_existing_foreign_files(tmp_path: Path, behavior: str, expected: str) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "etc/app").mkdir(parents=True)
    (prefix / "etc/app/a.conf").write_text("foreign")
    archive = bundle(tmp_path / "a", {"app/x.py": "x", "conf/a.conf": "new"})
    install(spec(), archive, str(prefix), tmp_path / "cleanup", behavior)
    assert (prefix / "etc/app/a.conf").read_text() == expected


def test_disallow_fails_naming_the_file_and_changes_nothing(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "etc/app").mkdir(parents=True)
    (prefix / "etc/app/a.conf").write_text("foreign")
    archive = bundle(tmp_path / "a", {"app/x.py": "x", "conf/a.conf": "new"})
    with pytest.raises(EventFailed, match=r"already exists at this location: .*a\.conf"):
        install(spec(), archive, str(prefix), tmp_path / "cleanup", None)
    assert (prefix / "etc/app/a.conf").read_text() == "foreign"
    assert not (prefix / "opt/app").exists()


def test_appspec_behavior_wins_over_the_deployments(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "etc/app").mkdir(parents=True)
    (prefix / "etc/app/a.conf").write_text("foreign")
    archive = bundle(tmp_path / "a", {"app/x.py": "x", "conf/a.conf": "new"})
    install(spec("RETAIN"), archive, str(prefix), tmp_path / "cleanup", "OVERWRITE")
    assert (prefix / "etc/app/a.conf").read_text() == "foreign"


@pytest.mark.parametrize(
    ("mappings", "message"),
    [
        (  # a file onto another mapping's directory
            (FileMapping("conf", "/opt/app/conf"), FileMapping("other/conf", "/opt/app")),
            "files[1] (source 'other/conf') installs a file at {prefix}/opt/app/conf, "
            "where files[0] (source 'conf') installs a directory",
        ),
        (  # a directory onto another mapping's file
            (FileMapping("other/conf", "/opt/app"), FileMapping("conf", "/opt/app/conf/d")),
            "files[0] (source 'other/conf') installs a file at {prefix}/opt/app/conf, "
            "where files[1] (source 'conf') installs a directory",
        ),
        (
            (FileMapping("other/conf", "/opt/app"), FileMapping("conf/conf", "/opt/app")),
            "two files are installed to {prefix}/opt/app/conf: by files[0] (source "
            "'other/conf') and files[1] (source 'conf/conf')",
        ),
    ],
)
def test_conflicting_mappings_are_refused_naming_both_before_anything_changes(
    tmp_path: Path, mappings: tuple[FileMapping, ...], message: str
) -> None:
    archive = bundle(tmp_path / "a", {"conf/conf": "1", "other/conf": "2"})
    prefix = tmp_path / "prefix"
    with pytest.raises(EventFailed) as error:
        install(AppSpec(mappings, {}, None), archive, str(prefix), tmp_path / "cleanup", None)
    assert error.value.message == message.format(prefix=prefix)
    assert not prefix.exists()


def test_file_links_stay_links_and_directory_links_are_followed(tmp_path: Path) -> None:
    archive = bundle(tmp_path / "a", {"app/lib/libfoo.so.1": "elf", "app/v1/index.html": "v1"})
    (archive / "app/lib/libfoo.so").symlink_to("libfoo.so.1")
    (archive / "app/current").symlink_to("v1")
    prefix = tmp_path / "prefix"
    install(
        AppSpec((FileMapping("app", "/opt/app"),), {}, None),
        archive,
        str(prefix),
        tmp_path / "cleanup",
        None,
    )
    assert (prefix / "opt/app/lib/libfoo.so").readlink() == Path("libfoo.so.1")
    assert not (prefix / "opt/app/current").is_symlink()
    assert (prefix / "opt/app/current/index.html").read_text() == "v1"


def test_a_directory_link_to_its_own_ancestor_is_refused(tmp_path: Path) -> None:
    archive = bundle(tmp_path / "a", {"app/a/x": "x"})
    (archive / "app/a/loop").symlink_to("..")
    with pytest.raises(EventFailed, match="links to a directory that contains it"):
        install(
            AppSpec((FileMapping("app", "/opt/app"),), {}, None),
            archive,
            str(tmp_path / "prefix"),
            tmp_path / "cleanup",
            None,
        )
    assert not (tmp_path / "prefix").exists()
