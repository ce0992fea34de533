"""`deploy push` bundling: what goes into the zip."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from deploy.bundle import make_zip
from deploy.errors import ClientError


def source(root: Path) -> Path:
    (root / "app/.cache").mkdir(parents=True)
    (root / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (root / "app/index.html").write_text("hi\n")
    (root / "app/.env").write_text("SECRET=1\n")
    (root / "app/.cache/blob").write_text("x\n")
    return root


def names(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as archive:
        return sorted(archive.namelist())


def test_hidden_files_are_bundled_unless_ignored(tmp_path: Path) -> None:
    root = source(tmp_path / "src")
    make_zip(root, tmp_path / "all.zip")
    assert names(tmp_path / "all.zip") == [
        "app/.cache/blob",
        "app/.env",
        "app/index.html",
        "appspec.yml",
    ]
    make_zip(root, tmp_path / "visible.zip", ignore_hidden=True)
    assert names(tmp_path / "visible.zip") == ["app/index.html", "appspec.yml"]


def test_the_same_tree_gives_the_same_digest(tmp_path: Path) -> None:
    root = source(tmp_path / "src")
    assert make_zip(root, tmp_path / "a.zip") == make_zip(root, tmp_path / "b.zip")


def test_a_tree_without_appspec_is_refused(tmp_path: Path) -> None:
    root = source(tmp_path / "src")
    (root / "appspec.yml").unlink()
    with pytest.raises(ClientError, match=r"no appspec\.yml"):
        make_zip(root, tmp_path / "x.zip")


def test_links_inside_are_kept_as_links(tmp_path: Path) -> None:
    root = source(tmp_path / "src")
    (root / "app/current.html").symlink_to("index.html")
    make_zip(root, tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        info = archive.getinfo("app/current.html")
        assert stat.S_ISLNK(info.external_attr >> 16)
        assert archive.read(info) == b"index.html"


def test_a_link_outside_is_refused_before_upload(tmp_path: Path) -> None:
    root = source(tmp_path / "src")
    (root / "app/passwd").symlink_to("/etc/passwd")
    with pytest.raises(ClientError, match="app/passwd links outside the directory"):
        make_zip(root, tmp_path / "b.zip")


def test_what_deflating_does_not_shrink_is_stored_and_the_rest_deflated(tmp_path: Path) -> None:
    """As `zip` does: an already compressed file costs no deflating at push and no inflating
    on every host; both unpack to the bytes given."""
    root = source(tmp_path / "src")
    payload = os.urandom(300_000)
    (root / "app/image.png").write_bytes(payload)
    (root / "app/page.html").write_text("<p>hello</p>\n" * 1000)
    make_zip(root, tmp_path / "b.zip")
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert archive.getinfo("app/image.png").compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("app/page.html").compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("app/image.png") == payload
        assert archive.read("app/page.html") == b"<p>hello</p>\n" * 1000
