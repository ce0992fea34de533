"""appspec.yml: parsed into plain data and checked against the bundle before the host changes.

What CodeDeploy accepts is accepted with the same meaning; where its agent is lenient and its
documentation strict, OpenDeploy accepts and warns (see docs in README and the reference table).
"""

from __future__ import annotations

import grp
import logging
import pwd
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from agent.errors import ErrorCode, EventFailed

log = logging.getLogger(__name__)

APPSPEC_NAME = "appspec.yml"
FALLBACK_NAMES = ("appspec.yaml", "appspec.yml")
SCRIPTABLE_EVENTS = (
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
SYSTEM_EVENTS = ("DownloadBundle", "Install", "BlockTraffic", "AllowTraffic")
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
MAX_EVENT_SECONDS = 3600
TOP_LEVEL_KEYS = {"version", "os", "files", "permissions", "hooks", "file_exists_behavior"}
PERMISSION_KEYS = {
    "object",
    "pattern",
    "except",
    "type",
    "owner",
    "group",
    "mode",
    "acls",
    "context",
}
_MODE = re.compile(r"^[0-7]{1,4}\Z")
_LEADING_ZERO_INT = re.compile(r"^0[0-9]+\Z")


@dataclass(frozen=True)
class FileMapping:
    source: str
    """Relative to the bundle root; "/" is the whole bundle."""
    destination: str
    """Absolute path on the host (before the agent's install prefix)."""


@dataclass(frozen=True)
class Script:
    location: str
    timeout_seconds: int = MAX_EVENT_SECONDS
    runas: str = ""


@dataclass(frozen=True)
class Permission:
    """One `permissions` entry; applied after the files are copied."""

    object: str
    pattern: str = "**"
    excepts: tuple[str, ...] = ()
    types: frozenset[str] = frozenset({"file", "directory"})
    owner: str = ""
    group: str = ""
    mode: str = ""
    """Octal digits, padded to at least 3 ("644", "0755"); empty leaves the mode alone."""


@dataclass(frozen=True)
class AppSpec:
    files: tuple[FileMapping, ...]
    hooks: dict[str, tuple[Script, ...]]
    file_exists_behavior: str | None
    permissions: tuple[Permission, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """What was accepted but deserves the author's attention (unknown keys, long timeouts)."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as CodeDeploy reads it, except that an unquoted leading-zero number (mode: 0644)
    stays the digits the author wrote instead of becoming an octal integer."""


def _int_or_digits(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    if isinstance(value, str) and _LEADING_ZERO_INT.match(value):
        return value
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_digits)


def _invalid(message: str) -> EventFailed:
    return EventFailed(ErrorCode.INVALID_APPSPEC, f"appspec: {message}")


def find_appspec(archive: Path, filename: str = APPSPEC_NAME) -> Path:
    """The requested name, then appspec.yaml, then appspec.yml (CodeDeploy's fallbacks)."""
    for name in (filename, *FALLBACK_NAMES):
        if (archive / name).is_file():
            return archive / name
    raise _invalid(f"no {filename} at the root of the bundle")


def read_appspec(text: str) -> AppSpec:
    """Parse and validate the document alone (no bundle)."""
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _invalid(f"not valid YAML: {exc}") from exc
    return parse_appspec(raw)


def load_appspec(
    archive: Path, filename: str = APPSPEC_NAME, events: Collection[str] | None = None
) -> AppSpec:
    """Parse and validate the bundle's appspec, including that the paths it names exist."""
    spec = read_appspec(find_appspec(archive, filename).read_text())
    check_against_bundle(spec, archive, events)
    return spec


def parse_appspec(raw: Any) -> AppSpec:
    """Validate the document's shape; raises EventFailed naming the offending key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _invalid("the file is empty")
    if not isinstance(raw, dict):
        raise _invalid("the document must be a mapping of keys (version, os, files, hooks, …)")
    warnings = [
        f"unknown top-level key {key!r} ignored" for key in raw if key not in TOP_LEVEL_KEYS
    ]
    if raw.get("version") not in (0, 0.0, "0.0"):
        raise _invalid(f"version must be 0.0, got {raw.get('version')!r}")
    os_name = raw.get("os")
    if os_name == "windows":
        raise _invalid("os windows is not supported: OpenDeploy agents run on linux")
    if os_name != "linux":
        raise _invalid(f"os must be linux, got {os_name!r}")
    behavior = raw.get("file_exists_behavior")
    if behavior is not None and behavior not in FILE_EXISTS_BEHAVIORS:
        raise _invalid(
            f"file_exists_behavior must be DISALLOW, OVERWRITE or RETAIN, got {behavior!r}"
        )
    spec = AppSpec(
        files=_files(raw.get("files")),
        hooks=_hooks(raw.get("hooks"), warnings),
        file_exists_behavior=behavior,
        permissions=_permissions(raw.get("permissions"), warnings),
        warnings=tuple(warnings),
    )
    for warning in spec.warnings:
        log.warning("appspec: %s", warning)
    return spec


def _files(raw: Any) -> tuple[FileMapping, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("files must be a list of {source, destination}")
    mappings = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise _invalid(f"files[{i}] must be a mapping with source and destination")
        for key in ("source", "destination"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise _invalid(f"files[{i}].{key} is required")
        destination = entry["destination"].strip()
        if not destination.startswith("/"):
            raise _invalid(f"files[{i}].destination must be an absolute path, got {destination!r}")
        mappings.append(FileMapping(entry["source"].strip(), destination))
    return tuple(mappings)


def _hooks(raw: Any, warnings: list[str]) -> dict[str, tuple[Script, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("hooks must be a mapping of event name to a list of scripts")
    hooks: dict[str, tuple[Script, ...]] = {}
    for event, scripts in raw.items():
        if event in SYSTEM_EVENTS:
            warnings.append(f"hooks.{event} is run by the system, not by scripts; ignored")
            continue
        if event not in SCRIPTABLE_EVENTS:
            warnings.append(f"hooks.{event} is not a CodeDeploy lifecycle event")
        if scripts is None:
            continue
        if not isinstance(scripts, list):
            raise _invalid(f"hooks.{event} must be a list of scripts")
        hooks[str(event)] = tuple(
            _script(str(event), i, s, warnings) for i, s in enumerate(scripts)
        )
    return hooks


def _timeout(where: str, value: Any, warnings: list[str]) -> int:
    """CodeDeploy's reading: the integer prefix ("2s" → 2, 2.9 → 2); it must be positive."""
    if value is None:
        return MAX_EVENT_SECONDS
    if isinstance(value, bool):
        raise _invalid(f"{where}.timeout must be a number of seconds, got {value!r}")
    match = re.match(r"^\s*(\d+)", str(value))
    seconds = int(match.group(1)) if match else 0
    if seconds <= 0:
        raise _invalid(f"{where}.timeout must be a positive number of seconds, got {value!r}")
    if seconds > MAX_EVENT_SECONDS:
        warnings.append(f"{where}.timeout {seconds} is above 3600; an event still ends at one hour")
        return MAX_EVENT_SECONDS
    return seconds


def _script(event: str, index: int, raw: Any, warnings: list[str]) -> Script:
    where = f"hooks.{event}[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be a mapping with location")
    location = raw.get("location")
    if not isinstance(location, str) or not location.strip():
        raise _invalid(f"{where}.location is required")
    runas = raw.get("runas") or ""
    if not isinstance(runas, str):
        raise _invalid(f"{where}.runas must be a user name")
    # Whether the user exists is asked when the hook is due (agent.hooks.hook_user): an
    # earlier hook may create it (a package's postinstall).
    return Script(location.strip(), _timeout(where, raw.get("timeout"), warnings), runas.strip())


def _permissions(raw: Any, warnings: list[str]) -> tuple[Permission, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("permissions must be a list")
    return tuple(_permission(i, entry, warnings) for i, entry in enumerate(raw))


def _permission(index: int, raw: Any, warnings: list[str]) -> Permission:
    where = f"permissions[{index}]"
    if not isinstance(raw, dict) or not str(raw.get("object") or "").strip():
        raise _invalid(f"{where}.object is required")
    for key in raw:
        if key not in PERMISSION_KEYS:
            warnings.append(f"unknown key {where}.{key} ignored")
    for key in ("acls", "context"):
        if raw.get(key):
            raise _invalid(f"{where}.{key} is not supported yet")
    types = raw.get("type", ["file", "directory"])
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, list) or not types or not set(types) <= {"file", "directory"}:
        raise _invalid(f"{where}.type must be a list of file and/or directory")
    excepts = raw.get("except") or []
    if not isinstance(excepts, list):
        raise _invalid(f"{where}.except must be a list of patterns")
    mode = "" if raw.get("mode") is None else str(raw["mode"])
    if mode and not _MODE.match(mode):
        raise _invalid(f"{where}.mode must be 1-4 octal digits, got {raw['mode']!r}")
    permission = Permission(
        object=str(raw["object"]).strip(),
        pattern=str(raw.get("pattern") or "**"),
        excepts=tuple(str(e) for e in excepts),
        types=frozenset(types),
        owner=str(raw.get("owner") or ""),
        group=str(raw.get("group") or ""),
        mode=mode.rjust(3, "0") if mode else "",
    )
    return permission


def unknown_principals(spec: AppSpec) -> list[str]:
    """Every owner and group of `permissions` this host does not know — asked when Install
    starts, after BeforeInstall (whose package may create them), before anything is copied."""
    unknown = []
    for i, permission in enumerate(spec.permissions):
        if permission.owner and not _known(pwd.getpwnam, permission.owner):
            unknown.append(
                f"permissions[{i}].owner {permission.owner!r} is not a user on this host"
            )
        if permission.group and not _known(grp.getgrnam, permission.group):
            unknown.append(
                f"permissions[{i}].group {permission.group!r} is not a group on this host"
            )
    return unknown


def _known(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def check_against_bundle(
    spec: AppSpec, archive: Path, events: Collection[str] | None = None
) -> None:
    """Every files source must exist inside the bundle, and every hook script of the events
    this deployment runs (`events`; None: all); a missing script of another event is a
    warning, as it would only fail if that event ran."""
    for i, mapping in enumerate(spec.files):
        if not bundle_path(archive, mapping.source).exists():
            raise _invalid(f"files[{i}].source {mapping.source!r} is not in the bundle")
    for event, scripts in spec.hooks.items():
        for i, script in enumerate(scripts):
            if bundle_path(archive, script.location).is_file():
                continue
            if events is not None and event not in events:
                log.warning(
                    "appspec: hooks.%s[%d].location %r is not in the bundle; this "
                    "deployment does not run %s",
                    event,
                    i,
                    script.location,
                    event,
                )
                continue
            raise EventFailed(
                ErrorCode.SCRIPT_MISSING,
                f"appspec: hooks.{event}[{i}].location {script.location!r} is not in the bundle",
                script_name=script.location,
            )


def bundle_path(archive: Path, relative: str) -> Path:
    """A path inside the archive; a leading "/" stays inside (as CodeDeploy joins paths)."""
    parts = [p for p in PurePosixPath(relative).parts if p not in ("/", ".")]
    if ".." in parts:
        raise _invalid(f"path {relative!r} leaves the bundle")
    return archive.joinpath(*parts)
