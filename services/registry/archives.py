"""What the registry checks of a bundle before recording it: that it is an archive of the
declared type, with an appspec where the agent will look for it.

The agent checks everything again (and much more) before it touches a host; these checks only
move the two commonest mistakes from DownloadBundle to registration time.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from deploy.bundlelimits import BundleLimits, BundleTooLarge
from services.core.revision import BundleType

APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
GZIP_MAGIC = b"\x1f\x8b"


def bundle_problem(path: Path, kind: BundleType, limits: BundleLimits | None = None) -> str | None:
    """Why the file at `path` is not a usable bundle of type `kind`; None when it is."""
    try:
        names = _names(path, kind, limits or BundleLimits())
    except BundleTooLarge as error:
        return f"is refused: {error}"
    if names is None:
        return f"is not a {kind} archive"
    if not _has_appspec(names):
        return "has no appspec.yml at its root"
    return None


def _names(path: Path, kind: BundleType, limits: BundleLimits) -> list[str] | None:
    """The entry names, the archive's declared sizes and count checked against the limits
    (entry by entry for tar, so a bomb is refused before its data is decompressed)."""
    size = path.stat().st_size
    limits.check_size(size)
    with path.open("rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
    try:
        if kind is BundleType.ZIP:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                limits.check_entries(len(infos))
                limits.check_unpacked(sum(i.file_size for i in infos), size)
                return [i.filename for i in infos]
        if gzipped != (kind is BundleType.TGZ):
            return None
        names, declared = [], 0
        with tarfile.open(path, "r:gz" if gzipped else "r:") as archive:
            for count, member in enumerate(archive, start=1):
                declared += member.size
                limits.check_entries(count)
                limits.check_unpacked(declared, size)
                names.append(member.name)
        return names
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
