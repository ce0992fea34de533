"""Install: remove what the group's previous install created, then copy the appspec's files.

Conflicts are found before anything on the host is removed or written. The paths this install
creates are recorded in the group's cleanup file, so the next install can remove them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agent.appspec import AppSpec, bundle_path, shown, unknown_principals
from agent.errors import ErrorCode, EventFailed
from agent.permissions import apply_permissions, forget_context, plan_permissions
from deploy.bundlelimits import BundleLimits

MAX_TREE_ENTRIES = BundleLimits().max_entries
SELINUX_RECORD = "semanage\0"
"""A cleanup line for an SELinux context rule (CodeDeploy's form): then the labelled path."""


def host_path(prefix: str, destination: str) -> Path:
    """Where an absolute appspec destination lands on this host."""
    return Path(prefix + destination) if prefix else Path(destination)


def source_tree(source: Path) -> list[tuple[Path, bool]]:
    """(path, is_directory) of everything below a `files` source, sorted, dotfiles included;
    links to directories are followed (CodeDeploy's rule), a link to a directory that holds it
    is refused, and the walk is bounded by the bundle's entry limit."""
    entries: list[tuple[Path, bool]] = []

    def visit(directory: Path, ancestors: frozenset[Path]) -> None:
        for item in sorted(directory.iterdir()):
            is_dir = item.is_dir()
            entries.append((item, is_dir))
            if len(entries) > MAX_TREE_ENTRIES:
                raise EventFailed(
                    ErrorCode.INVALID_BUNDLE,
                    f"following its directory links, the bundle has more than "
                    f"{MAX_TREE_ENTRIES} entries",
                )
            if is_dir:
                real = item.resolve()
                if real in ancestors:
                    raise EventFailed(
                        ErrorCode.INVALID_BUNDLE,
                        f"bundle entry {item} links to a directory that contains it",
                    )
                visit(item, ancestors | {real})

    visit(source, frozenset({source.resolve()}))
    return entries


@dataclass(frozen=True)
class FilePlan:
    copies: list[tuple[Path, Path]]
    """(source, target) for every file to copy, in appspec order."""
    directories: list[Path]
    """Every directory of the sources' trees at its destination: empty ones are created too
    (CodeDeploy installs the tree, not only its files)."""


def plan_files(spec: AppSpec, archive: Path, prefix: str) -> FilePlan:
    """What the `files` mappings install; directory sources install their contents. Refused,
    naming both sides: two files for one target, a file where another mapping makes a
    directory (or the reverse), and a path where the host has the other kind."""
    plan = FilePlan([], [])
    made_by: dict[Path, str] = {}  # target → the appspec source that installs it
    dirs_by: dict[Path, str] = {}  # directory → the appspec source that needs it
    for i, mapping in enumerate(spec.files):
        source = bundle_path(archive, mapping.source)
        destination = host_path(prefix, mapping.destination)
        where = f"files[{i}] (source {shown(mapping.source)})"
        for directory in (destination, *destination.parents):
            dirs_by.setdefault(directory, where)
        tree = source_tree(source) if source.is_dir() else [(source, False)]
        for item, is_dir in tree:
            target = destination / (item.relative_to(source) if item != source else item.name)
            if is_dir:
                dirs_by.setdefault(target, where)
                plan.directories.append(target)
            else:
                _claim(made_by, target, where)
                plan.copies.append((item, target))
    for target, file_source in made_by.items():
        if target in dirs_by:
            raise EventFailed(
                ErrorCode.INSTALL_FAILED,
                f"{file_source} installs a file at {target}, where {dirs_by[target]} "
                "installs a directory",
            )
    _check_host(plan)
    return plan


def _claim(made_by: dict[Path, str], target: Path, where: str) -> None:
    if target in made_by:
        raise EventFailed(
            ErrorCode.INSTALL_FAILED,
            f"two files are installed to {target}: by {made_by[target]} and {where}",
        )
    made_by[target] = where


def _check_host(plan: FilePlan) -> None:
    """A file where the revision installs a directory, or a directory where it installs a
    file, would fail half-way: refused before anything changes."""
    for directory in plan.directories:
        if (directory.exists() or directory.is_symlink()) and not directory.is_dir():
            raise EventFailed(
                ErrorCode.INSTALL_FAILED,
                f"{directory} is a file on this host; the revision installs a directory there",
            )
    for _, target in plan.copies:
        if target.is_dir() and not target.is_symlink():
            raise EventFailed(
                ErrorCode.INSTALL_FAILED,
                f"{target} is a directory on this host; the revision installs a file there",
            )


def resolve_behavior(spec: AppSpec, deployment_behavior: str | None) -> str:
    """The appspec's file_exists_behavior wins, then the deployment's, then DISALLOW."""
    return spec.file_exists_behavior or deployment_behavior or "DISALLOW"


def preflight(spec: AppSpec, archive: Path, prefix: str, cleanup_file: Path) -> None:
    """What Install would reject about the revision itself (target conflicts, permission
    entries), found at DownloadBundle — before any hook of the new revision has run."""
    plan = plan_files(spec, archive, prefix)
    mkdirs = _planned_dirs(plan, set(_read_cleanup(cleanup_file)))
    plan_permissions(spec.permissions, prefix, {t for _, t in plan.copies}, mkdirs)


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
    plan = plan_files(spec, archive, prefix)
    previous = _read_cleanup(cleanup_file)
    behavior = resolve_behavior(spec, deployment_behavior)
    owned = set(previous)
    if behavior == "DISALLOW":
        for _, target in plan.copies:
            if target not in owned and (target.exists() or target.is_symlink()):
                raise EventFailed(
                    ErrorCode.INSTALL_FAILED,
                    f"a specified file already exists at this location: {target} "
                    "(file_exists_behavior DISALLOW)",
                )
    mkdirs = _planned_dirs(plan, owned)
    permissions = plan_permissions(spec.permissions, prefix, {t for _, t in plan.copies}, mkdirs)
    _uninstall(previous)
    cleanup_file.parent.mkdir(parents=True, exist_ok=True)
    installed: list[Path] = []
    with cleanup_file.open("w") as record:
        for source, target in plan.copies:
            if behavior == "RETAIN" and target.exists():
                continue
            for directory in _missing_dirs(target.parent):
                directory.mkdir()
                record.write(f"{directory}\n")
            record.write(f"{target}\n")
            record.flush()
            if target.exists() or target.is_symlink():
                target.unlink()
            shutil.copy2(source, target, follow_symlinks=False)  # a link stays a link
            installed.append(target)
        for directory in plan.directories:  # the empty ones are still missing
            for missing in _missing_dirs(directory):
                missing.mkdir()
                record.write(f"{missing}\n")
        apply_permissions(permissions, lambda path: record.write(f"{SELINUX_RECORD}{path}\n"))
    return installed


def _planned_dirs(plan: FilePlan, owned: set[Path]) -> set[Path]:
    """Directories this install will create: missing now, or created by the previous install of
    the group (which is removed first)."""
    planned: set[Path] = set()
    for directory in {target.parent for _, target in plan.copies} | set(plan.directories):
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
    """Remove recorded paths newest first; directories only when empty; a recorded SELinux
    context loses its rule."""
    for path in reversed(paths):
        if str(path).startswith(SELINUX_RECORD):
            forget_context(Path(str(path).removeprefix(SELINUX_RECORD)))
        elif path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
