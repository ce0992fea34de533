"""permissions: which installed paths each appspec entry sets, decided before the host changes,
then applied (chmod, setfacl, semanage + restorecon, chown) after the files are copied —
CodeDeploy's rules:

* an object that is a file this install copies: that file (type must include file; pattern
  must be ** and except empty);
* an object that is a directory (created by this install or already on disk): the copied files
  (type file) and created directories (type directory) strictly below it — at any depth for
  pattern **, else the direct children whose name matches the pattern (`*` is the only
  wildcard); `except` removes direct children by name;
* anything else is ignored; setting one path from two entries is an error;
* `acls` need setfacl and `context` SELinux's semanage and restorecon: a host without them is
  told so before anything is copied. Links installed from the bundle are left alone (a link's
  own mode means nothing on Linux; what it points to has its own entry).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from agent.appspec import AclEntry, Permission, rwx
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
        if paths:
            _check_tools(index, entry)
        if entry.acls and any(a.default for a in entry.acls):
            for path in paths:
                if path in copies:
                    raise _fail(
                        f"permissions[{index}].acls has default entries, which only "
                        f"directories can have, and {path} is a file"
                    )
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


def _check_tools(index: int, entry: Permission) -> None:
    if entry.acls and shutil.which("setfacl") is None:
        raise _fail(
            f"permissions[{index}].acls needs setfacl, which this host does not have "
            "(the acl package)"
        )
    if entry.context is not None:
        missing = [tool for tool in ("semanage", "restorecon") if shutil.which(tool) is None]
        if missing:
            raise _fail(
                f"permissions[{index}].context needs {' and '.join(missing)}, which this host "
                "does not have (SELinux's policycoreutils)"
            )


def apply_permissions(
    actions: list[tuple[Path, Permission]], labelled: Callable[[Path], object]
) -> None:
    """chmod, setfacl, semanage + restorecon, then chown, per path (CodeDeploy's order);
    `labelled` records each path given an SELinux context, for the next cleanup to remove."""
    for path, entry in actions:
        if path.is_symlink():
            continue
        if entry.mode:
            path.chmod(int(entry.mode, 8))
        if entry.acls:
            _tool("setfacl", "--set", ",".join(acl_entries(path, entry.acls)), str(path))
        if entry.context is not None:
            context = entry.context
            real = os.path.realpath(path)
            options = ["-t", context.type]
            options += ["-s", context.name] if context.name else []
            options += ["-r", context.range] if context.range else []
            labelled(Path(real))
            _tool("semanage", "fcontext", "-a", *options, real, exists_ok=True)
            _tool("restorecon", "-v", real)
        if entry.owner or entry.group:
            os.chown(path, _uid(entry.owner), _gid(entry.group), follow_symlinks=False)


def acl_entries(path: Path, acls: tuple[AclEntry, ...]) -> list[str]:
    """The whole ACL as CodeDeploy sets it: the base entries from the (just set) mode, the
    appspec's entries, a mask from the group digit when named entries need one, and for
    default entries the missing default base entries and mask."""
    mode = path.stat().st_mode
    shifts = (("user", 6), ("group", 3), ("other", 0))
    base = {kind: rwx(str((mode >> shift) & 7)) for kind, shift in shifts}
    result = [f"{kind}::{perms}" for kind, perms in base.items()]
    result += [str(a) for a in acls]
    named = [a for a in acls if a.name and not a.default]
    if named and not any(a.kind == "mask" and not a.default for a in acls):
        result.append(f"mask::{base['group']}")
    defaults = {a.kind: a for a in acls if a.default and not a.name}
    if any(a.default for a in acls):
        for kind in ("user", "group", "other"):
            if kind not in defaults:
                result.append(f"default:{kind}::{base[kind]}")
        if "mask" not in defaults:
            group = defaults["group"].perms if "group" in defaults else base["group"]
            result.append(f"default:mask::{group}")
    return result


def _tool(*command: str, exists_ok: bool = False) -> None:
    """Run setfacl/semanage/restorecon; a failure fails the Install with the tool's words.
    `semanage fcontext -a` of a path that has a rule already modifies it (-m) instead."""
    done = _run(command)
    if done.returncode != 0 and exists_ok and "already defined" in done.stderr:
        done = _run((command[0], command[1], "-m", *command[3:]))
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise _fail(f"{' '.join(command)} failed: {detail[-1] if detail else done.returncode}")


def _run(command: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _fail(f"{' '.join(command)} failed: {error}") from None


def forget_context(path: Path) -> None:
    """The cleanup of a recorded SELinux context: its rule removed, whatever the result."""
    if shutil.which("semanage"):
        with contextlib.suppress(EventFailed):
            _run(("semanage", "fcontext", "-d", str(path)))


def _uid(owner: str) -> int:
    return pwd.getpwnam(owner).pw_uid if owner else -1


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid if group else -1
