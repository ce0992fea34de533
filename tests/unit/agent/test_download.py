"""Bundle safety: entries that would escape the bundle, links outside it and device files are
rejected with a clear error, and nothing is written."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from agent.download import check_tree, unpack
from agent.errors import ErrorCode, EventFailed


def zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr(name, "evil")
    return path


def tar_with(path: Path, member: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w") as archive:
        data = b"version: 0.0\nos: linux\n"
        info = tarfile.TarInfo("appspec.yml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        archive.addfile(member, io.BytesIO(b"") if member.isfile() else None)
    return path


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/evil.conf", "app/../../x"])
def test_zip_entries_that_escape_are_rejected(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "out"
    with pytest.raises(EventFailed) as error:
        unpack(zip_with(tmp_path / "b.zip", name), "zip", archive)
    assert error.value.code is ErrorCode.INVALID_BUNDLE
    assert "escapes the bundle" in error.value.message
    assert not archive.exists() or not any(archive.iterdir())
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (symlink("link", "/etc/passwd"), "is not a file"),
        (device("dev/null"), "is not a file"),
        (tarfile.TarInfo("../../up.txt"), "escapes the bundle"),
    ],
)
def test_tar_links_devices_and_escapes_are_rejected(
    tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    archive = tmp_path / "out"
    with pytest.raises(EventFailed, match=message):
        unpack(tar_with(tmp_path / "b.tar", member), "tar", archive)
    assert not archive.exists() or not any(archive.iterdir())


def test_directory_bundle_with_link_outside_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b/appspec.yml").write_text("version: 0.0\nos: linux\n")
    (tmp_path / "b/out").symlink_to("/etc")
    with pytest.raises(EventFailed, match="links outside the bundle"):
        check_tree(tmp_path / "b")


def test_directory_bundle_with_link_inside_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "b/app").mkdir(parents=True)
    (tmp_path / "b/app/real.txt").write_text("x")
    (tmp_path / "b/alias.txt").symlink_to("app/real.txt")
    check_tree(tmp_path / "b")


def test_a_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "b.zip").write_bytes(b"not a zip")
    with pytest.raises(EventFailed, match="cannot be unpacked"):
        unpack(tmp_path / "b.zip", "zip", tmp_path / "out")
