"""What the registry refuses at registration: wrong archive types and bundles without appspec."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from services.core.revision import BundleType
from services.registry.archives import bundle_problem

APPSPEC = b"version: 0.0\nos: linux\n"


def zipped(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def tarred(path: Path, entries: dict[str, bytes], gz: bool) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        (BundleType.ZIP, lambda p, e: zipped(p, e)),
        (BundleType.TAR, lambda p, e: tarred(p, e, False)),
        (BundleType.TGZ, lambda p, e: tarred(p, e, True)),
    ],
)
def test_each_type_is_accepted_with_appspec_at_the_root_or_under_one_directory(
    tmp_path: Path, kind: BundleType, make: Callable[[Path, dict[str, bytes]], Path]
) -> None:
    assert bundle_problem(make(tmp_path / "a", {"appspec.yml": APPSPEC}), kind) is None
    nested = make(tmp_path / "b", {"app/appspec.yml": APPSPEC, "app/x": b"x"})
    assert bundle_problem(nested, kind) is None
    bare = make(tmp_path / "c", {"app/x": b"x", "other/appspec.yml": APPSPEC, "y": b""})
    assert bundle_problem(bare, kind) == "has no appspec.yml at its root"


def test_an_archive_of_another_type_is_refused(tmp_path: Path) -> None:
    plain = tarred(tmp_path / "t.tar", {"appspec.yml": APPSPEC}, gz=False)
    gzipped = tarred(tmp_path / "t.tgz", {"appspec.yml": APPSPEC}, gz=True)
    zip_file = zipped(tmp_path / "z.zip", {"appspec.yml": APPSPEC})
    assert bundle_problem(plain, BundleType.ZIP) == "is not a zip archive"
    assert bundle_problem(plain, BundleType.TGZ) == "is not a tgz archive"
    assert bundle_problem(gzipped, BundleType.TAR) == "is not a tar archive"
    assert bundle_problem(zip_file, BundleType.TAR) == "is not a tar archive"
    (tmp_path / "junk").write_bytes(b"not an archive at all")
    assert bundle_problem(tmp_path / "junk", BundleType.ZIP) == "is not a zip archive"
