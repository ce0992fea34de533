"""Bundle safety: entries that would escape the bundle, links outside it and device files are
rejected with a clear error, and nothing is written; modes are capped; bombs and oversized
bundles are refused."""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from agent.errors import ErrorCode, EventFailed
from agent.unpack import check_tree, unpack
from deploy.bundlelimits import BundleLimits
from tests.archives import add_zip_link, archive_of, zip_bomb


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
        (symlink("link", "/etc/passwd"), "links outside the bundle"),
        (symlink("app/link", "../../etc/passwd"), "links outside the bundle"),
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


def zip_links(path: Path, links: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr("lib/libfoo.so.1", "elf")
        for name, target in links.items():
            add_zip_link(archive, name, target)
    return path


@pytest.mark.parametrize("kind", ["zip", "tar", "tgz"])
def test_links_that_stay_inside_are_kept(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (tree / "lib/libfoo.so.1").write_text("elf")
    (tree / "lib/libfoo.so").symlink_to("libfoo.so.1")
    (tree / "current").symlink_to("lib")
    unpack(archive_of(tree, tmp_path / f"b.{kind}", kind), kind, tmp_path / "out")
    assert (tmp_path / "out/lib/libfoo.so").readlink() == Path("libfoo.so.1")
    assert (tmp_path / "out/current/libfoo.so").read_text() == "elf"


@pytest.mark.parametrize(
    "links",
    [
        {"lib/up": "../../outside"},
        {"abs": "/etc/passwd"},
        {"here": ".", "here/x": "y"},  # a link below a link
        {"p": ".", "q": "p/.."},  # inside by its text, outside on disk
    ],
)
def test_zip_links_that_lead_outside_are_refused(tmp_path: Path, links: dict[str, str]) -> None:
    with pytest.raises(EventFailed, match="links outside the bundle"):
        unpack(zip_links(tmp_path / "b.zip", links), "zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_an_archive_wrapped_in_one_directory_is_unwrapped(tmp_path: Path, kind: str) -> None:
    tree = tmp_path / "tree"
    (tree / "myapp").mkdir(parents=True)
    (tree / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (tree / "myapp/index.html").write_text("hi")
    unpack(archive_of(tree, tmp_path / f"b.{kind}", kind, wrap="myapp"), kind, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["appspec.yml", "myapp"]
    assert (tmp_path / "out/myapp/index.html").read_text() == "hi"


def test_one_directory_without_an_appspec_is_not_unwrapped(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "app").mkdir(parents=True)
    (tree / "app/index.html").write_text("hi")
    unpack(archive_of(tree, tmp_path / "b.zip", "zip"), "zip", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["app"]


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


def zip_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFREG | mode) << 16
    return info


def test_zip_modes_are_capped_at_0755_no_setuid_and_no_world_write(tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr(zip_entry("bin/tool", 0o4777), "#!/bin/sh\n")
        archive.writestr(zip_entry("etc/shared.conf", 0o2666), "x")
        archive.writestr(zip_entry("etc/sticky", 0o1750), "x")
        archive.writestr(zip_entry("etc/secret", 0o400), "x")
    unpack(bundle, "zip", tmp_path / "out")
    modes = {
        p.relative_to(tmp_path / "out").as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    }
    assert modes["bin/tool"] == 0o755
    assert modes["etc/shared.conf"] == 0o644
    assert modes["etc/sticky"] == 0o750
    assert modes["etc/secret"] == 0o600


def test_a_10_gb_zip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bundle = zip_bomb(tmp_path / "bomb.zip", 10 << 30)
    assert bundle.stat().st_size < 20 << 20
    with zipfile.ZipFile(bundle) as archive:  # a well-formed zip, as far as headers go
        assert archive.infolist()[0].file_size == 10 << 30
    with pytest.raises(EventFailed, match="archive bomb") as error:
        unpack(bundle, "zip", tmp_path / "out")
    assert error.value.code is ErrorCode.INVALID_BUNDLE
    assert not (tmp_path / "out").exists()


def test_a_tgz_bomb_is_refused_at_its_header(tmp_path: Path) -> None:
    bundle = tmp_path / "bomb.tgz"
    with tarfile.open(bundle, "w:gz") as archive:
        info = tarfile.TarInfo("zeros")
        info.size = 200 << 20
        archive.addfile(info, io.BytesIO(bytes(200 << 20)))
    assert bundle.stat().st_size < 1 << 20
    with pytest.raises(EventFailed, match="archive bomb"):
        unpack(bundle, "tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bundle_limits_are_configurable_and_named(tmp_path: Path) -> None:
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for i in range(5):
            archive.writestr(f"f{i}", "x")
    with pytest.raises(EventFailed, match="max_bundle_entries"):
        unpack(bundle, "zip", tmp_path / "out", BundleLimits(max_entries=4))
    with pytest.raises(EventFailed, match="max_bundle_bytes"):
        unpack(bundle, "zip", tmp_path / "out", BundleLimits(max_bytes=10))


def test_an_encrypted_zip_entry_is_a_clear_error(tmp_path: Path) -> None:
    bundle = zip_with(tmp_path / "b.zip", "app/secret.txt")
    data = bytearray(bundle.read_bytes())
    for header, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set "encrypted" everywhere
        start = 0
        while (at := data.find(header, start)) >= 0:
            data[at + flags] |= 1
            start = at + 4
    bundle.write_bytes(bytes(data))
    with pytest.raises(EventFailed, match=r"cannot be unpacked: .*encrypted") as error:
        unpack(bundle, "zip", tmp_path / "out")
    assert error.value.code is ErrorCode.INVALID_BUNDLE
    assert not (tmp_path / "out").exists()


def stored_and_deflated(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n", zipfile.ZIP_DEFLATED)
        archive.writestr(zip_entry("bin/tool", 0o755), b"\x7fELF" + bytes(range(256)) * 300)
        archive.writestr("empty", b"")
    return path


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in root.rglob("*")
        if p.is_file()
    }


def test_a_verified_bundle_unpacks_as_any_other(tmp_path: Path) -> None:
    """Stored entries of a bundle that matched its digest are copied by the kernel: the same
    files, contents and modes as through the archive module."""
    bundle = stored_and_deflated(tmp_path / "b.zip")
    unpack(bundle, "zip", tmp_path / "checked")
    unpack(bundle, "zip", tmp_path / "verified", verified=True)
    assert tree(tmp_path / "verified") == tree(tmp_path / "checked")
    assert tree(tmp_path / "verified")["bin/tool"][1] == 0o755


def test_a_verified_bundle_unpacks_where_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem without copy_file_range (across devices, or one that does not have it):
    the stored entries are copied through Python instead, to the same tree."""

    refused: list[int] = []

    def no_kernel_copy(*_: object) -> int:
        refused.append(1)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    bundle = stored_and_deflated(tmp_path / "b.zip")
    unpack(bundle, "zip", tmp_path / "checked")
    monkeypatch.setattr(os, "copy_file_range", no_kernel_copy)
    unpack(bundle, "zip", tmp_path / "verified", verified=True)
    assert refused  # the kernel copy was tried
    assert tree(tmp_path / "verified") == tree(tmp_path / "checked")


def test_a_stored_entry_whose_local_header_lies_is_refused(tmp_path: Path) -> None:
    bundle = stored_and_deflated(tmp_path / "b.zip")
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as archive:
        at = archive.getinfo("bin/tool").header_offset
    data[at : at + 4] = b"XXXX"  # the central directory still points here
    bundle.write_bytes(bytes(data))
    with pytest.raises(EventFailed, match="bad magic number") as error:
        unpack(bundle, "zip", tmp_path / "out", verified=True)
    assert error.value.code is ErrorCode.INVALID_BUNDLE
    assert not (tmp_path / "out").exists()


def test_only_an_unverified_bundle_has_its_stored_crcs_checked(tmp_path: Path) -> None:
    """A verified bundle's bytes matched its digest, which covers more than a CRC: its stored
    entries are copied as they are (this one's CRC, made wrong here, is not read)."""
    bundle = stored_and_deflated(tmp_path / "b.zip")
    data = bytearray(bundle.read_bytes())
    at = data.find(b"\x7fELF")
    data[at + 10] ^= 0xFF  # one byte of a stored entry changed: only its CRC tells
    bundle.write_bytes(bytes(data))
    with pytest.raises(EventFailed, match="CRC") as error:
        unpack(bundle, "zip", tmp_path / "checked")
    assert error.value.code is ErrorCode.INVALID_BUNDLE
    unpack(bundle, "zip", tmp_path / "verified", verified=True)
    assert (tmp_path / "verified/bin/tool").read_bytes()[10] == data[at + 10]
