"""permissions: which installed paths each appspec entry sets, decided before the host changes,
then applied (chmod, then chown) after the files are copied — CodeDeploy's rules:

* an object that is a file this install copies: that file (type must include file; pattern
  must be ** and except empty);
* an object that is a directory (created by this install or already on disk): the copied files
  (type file) and created directories (type directory) strictly below it — at any depth for
  pattern **, else the direct children whose name matches the pattern (`*` is the only
  wildcard); `except` removes direct children by name;
* anything else is ignored; setting one path from two entries is an error.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterable
from pathlib import Path

from agent.appspec import Permission
from agent.errors import ErrorCode, EventFailed


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _fail(message: str) -> EventFailed:
    return EventFailed(ErrorCode.INSTALL_FAILED, f"permissions: {message}")


def _below(entry: Permission, directory: Path, copies: set[Path], mkdirs: set[Path]) -> list[Path]:
    candidates = ([p for p in copies] if "file" in entry.types else []) + (
        [d for d in mkdirs] if "directory" in entry.types else []
    )
    pattern, excepts = _glob(entry.pattern), [_glob(e) for e in entry.excepts]
    matched = []
    for path in candidates:
        if directory not in path.parents:
            continue
        direct = path.parent == directory
        if entry.pattern != "**" and not (direct and pattern.match(path.name)):
            continue
        if direct and any(e.match(path.name) for e in excepts):
            continue
        matched.append(path)
    return sorted(matched)


def plan_permissions(
    entries: Iterable[Permission], prefix: str, copies: set[Path], mkdirs: set[Path]
) -> list[tuple[Path, Permission]]:
    """(path, entry) for every path an entry sets, in appspec order; errors name the entry."""
    planned: dict[Path, int] = {}
    actions: list[tuple[Path, Permission]] = []
    for index, entry in enumerate(entries):
        target = Path(prefix + entry.object) if prefix else Path(entry.object)
        if target in copies:
            if "file" not in entry.types:
                continue
            if entry.pattern != "**" or entry.excepts:
                raise _fail(
                    f"permissions[{index}]: object {entry.object} is a file, so pattern "
                    "must be ** and except empty"
                )
            paths = [target]
        elif target in mkdirs or target.is_dir():
            paths = _below(entry, target, copies, mkdirs)
        else:
            continue
        for path in paths:
            if path in planned:
                raise _fail(
                    f"{path} is set by permissions[{planned[path]}] and permissions[{index}]"
                )
            planned[path] = index
            actions.append((path, entry))
    _check_chown_allowed(actions)
    return actions


def _check_chown_allowed(actions: list[tuple[Path, Permission]]) -> None:
    """Changing ownership needs root: say so before anything is copied."""
    if os.geteuid() == 0:
        return
    me = pwd.getpwuid(os.geteuid()).pw_name
    for _, entry in actions:
        if entry.owner and entry.owner != me:
            raise _fail(f"owner {entry.owner!r} for {entry.object} needs the agent to run as root")
        if entry.group and entry.group not in _my_groups():
            raise _fail(
                f"group {entry.group!r} for {entry.object} needs the agent to run as root "
                "or to be a member of it"
            )


def _my_groups() -> set[str]:
    import grp

    return {grp.getgrgid(gid).gr_name for gid in os.getgroups()} | {
        grp.getgrgid(os.getegid()).gr_name
    }


def apply_permissions(actions: list[tuple[Path, Permission]]) -> None:
    """chmod, then chown, per path (CodeDeploy's order)."""
    for path, entry in actions:
        if entry.mode:
            path.chmod(int(entry.mode, 8))
        if entry.owner or entry.group:
            os.chown(path, _uid(entry.owner), _gid(entry.group), follow_symlinks=False)


def _uid(owner: str) -> int:
    return pwd.getpwnam(owner).pw_uid if owner else -1


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid if group else -1
