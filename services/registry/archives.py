"""What the registry checks of a bundle before recording it: that it is an archive of the
declared type, with an appspec where the agent will look for it.

The agent checks everything again (and much more) before it touches a host; these checks only
move the two commonest mistakes from DownloadBundle to registration time.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from services.core.revision import BundleType

APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
GZIP_MAGIC = b"\x1f\x8b"


def bundle_problem(path: Path, kind: BundleType) -> str:
    """Why the file at `path` is not a usable bundle of type `kind`; empty when it is."""
    names = _names(path, kind)
    if names is None:
        return f"is not a {kind} archive"
    if not _has_appspec(names):
        return "has no appspec.yml at its root"
    return ""


def _names(path: Path, kind: BundleType) -> list[str] | None:
    with path.open("rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
    try:
        if kind is BundleType.ZIP:
            with zipfile.ZipFile(path) as archive:
                return archive.namelist()
        if gzipped != (kind is BundleType.TGZ):
            return None
        with tarfile.open(path, "r:gz" if gzipped else "r:") as archive:
            return archive.getnames()
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError):
        return None


def _has_appspec(names: list[str]) -> bool:
    """At the root, or under a single top-level directory (the agent strips it, as
    CodeDeploy's does)."""
    paths = [PurePosixPath(n.removeprefix("./") or ".") for n in names]
    if any(str(p) in APPSPEC_NAMES for p in paths):
        return True
    tops = {p.parts[0] for p in paths if p.parts}
    return len(tops) == 1 and any(len(p.parts) == 2 and p.parts[1] in APPSPEC_NAMES for p in paths)
