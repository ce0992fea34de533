"""Install: remove what the group's previous install created, then copy the appspec's files.

Conflicts are found before anything on the host is removed or written. The paths this install
creates are recorded in the group's cleanup file, so the next install can remove them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.appspec import AppSpec, bundle_path, unknown_principals
from agent.errors import ErrorCode, EventFailed
from agent.permissions import apply_permissions, plan_permissions


def host_path(prefix: str, destination: str) -> Path:
    """Where an absolute appspec destination lands on this host."""
    return Path(prefix + destination) if prefix else Path(destination)


def plan_copies(spec: AppSpec, archive: Path, prefix: str) -> list[tuple[Path, Path]]:
    """(source, target) for every file to copy, in appspec order; directories copy contents."""
    copies: list[tuple[Path, Path]] = []
    for mapping in spec.files:
        source = bundle_path(archive, mapping.source)
        destination = host_path(prefix, mapping.destination)
        if source.is_dir():
            for item in sorted(source.rglob("*")):
                if item.is_file():
                    copies.append((item, destination / item.relative_to(source)))
        else:
            copies.append((source, destination / source.name))
    seen: set[Path] = set()
    for _, target in copies:
        if target in seen:
            raise EventFailed(ErrorCode.INSTALL_FAILED, f"two files are installed to {target}")
        seen.add(target)
    return copies


def plan_dirs(spec: AppSpec, archive: Path, prefix: str) -> list[Path]:
    """Every directory of the `files` sources' trees at its destination, in order: empty ones
    are created too (CodeDeploy installs the tree, not only its files). InstallFailed names one
    that is a file on the host."""
    directories: list[Path] = []
    for mapping in spec.files:
        source = bundle_path(archive, mapping.source)
        if source.is_dir():
            destination = host_path(prefix, mapping.destination)
            directories += [
                destination / item.relative_to(source)
                for item in sorted(source.rglob("*"))
                if item.is_dir()
            ]
    for directory in directories:
        if (directory.exists() or directory.is_symlink()) and not directory.is_dir():
            raise EventFailed(
                ErrorCode.INSTALL_FAILED,
                f"{directory} is a file on this host; the revision installs a directory there",
            )
    return directories


def resolve_behavior(spec: AppSpec, deployment_behavior: str | None) -> str:
    """The appspec's file_exists_behavior wins, then the deployment's, then DISALLOW."""
    return spec.file_exists_behavior or deployment_behavior or "DISALLOW"


def preflight(spec: AppSpec, archive: Path, prefix: str, cleanup_file: Path) -> None:
    """What Install would reject about the revision itself (target conflicts, permission
    entries), found at DownloadBundle — before any hook of the new revision has run."""
    copies = plan_copies(spec, archive, prefix)
    directories = plan_dirs(spec, archive, prefix)
    mkdirs = _planned_dirs(copies, directories, set(_read_cleanup(cleanup_file)))
    plan_permissions(spec.permissions, prefix, {t for _, t in copies}, mkdirs)


def install(
    spec: AppSpec, archive: Path, prefix: str, cleanup_file: Path, deployment_behavior: str | None
) -> list[Path]:
    """Uninstall the previous install of the group and install this revision's files.

    Everything that can fail on the revision's content (unknown owners and groups, conflicts,
    DISALLOW, permissions) is decided before the previous install is removed, so a rejected
    revision changes nothing."""
    unknown = unknown_principals(spec)
    if unknown:
        raise EventFailed(ErrorCode.INSTALL_FAILED, "; ".join(unknown))
    copies = plan_copies(spec, archive, prefix)
    directories = plan_dirs(spec, archive, prefix)
    previous = _read_cleanup(cleanup_file)
    behavior = resolve_behavior(spec, deployment_behavior)
    owned = set(previous)
    if behavior == "DISALLOW":
        for _, target in copies:
            if target not in owned and (target.exists() or target.is_symlink()):
                raise EventFailed(
                    ErrorCode.INSTALL_FAILED,
                    f"a specified file already exists at this location: {target} "
                    "(file_exists_behavior DISALLOW)",
                )
    mkdirs = _planned_dirs(copies, directories, owned)
    permissions = plan_permissions(spec.permissions, prefix, {t for _, t in copies}, mkdirs)
    _uninstall(previous)
    cleanup_file.parent.mkdir(parents=True, exist_ok=True)
    installed: list[Path] = []
    with cleanup_file.open("w") as record:
        for source, target in copies:
            if behavior == "RETAIN" and target.exists():
                continue
            for directory in _missing_dirs(target.parent):
                directory.mkdir()
                record.write(f"{directory}\n")
            record.write(f"{target}\n")
            record.flush()
            if target.exists() or target.is_symlink():
                target.unlink()
            shutil.copy2(source, target)
            installed.append(target)
        for directory in directories:  # the empty ones are still missing
            for missing in _missing_dirs(directory):
                missing.mkdir()
                record.write(f"{missing}\n")
    apply_permissions(permissions)
    return installed


def _planned_dirs(
    copies: list[tuple[Path, Path]], directories: list[Path], owned: set[Path]
) -> set[Path]:
    """Directories this install will create: missing now, or created by the previous install of
    the group (which is removed first)."""
    planned: set[Path] = set()
    for directory in {target.parent for _, target in copies} | set(directories):
        while directory != directory.parent and (directory in owned or not directory.exists()):
            planned.add(directory)
            directory = directory.parent
    return planned


def _missing_dirs(directory: Path) -> list[Path]:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    return list(reversed(missing))


def _read_cleanup(cleanup_file: Path) -> list[Path]:
    try:
        text = cleanup_file.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    return [Path(line) for line in lines[:-1] if line]  # a last line without "\n" is partial


def _uninstall(paths: list[Path]) -> None:
    """Remove recorded paths newest first; directories only when empty."""
    for path in reversed(paths):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
