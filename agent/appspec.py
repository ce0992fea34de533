"""appspec.yml: parsed into plain data and checked against the bundle before the host changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from agent.errors import ErrorCode, EventFailed

log = logging.getLogger(__name__)

APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
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
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
MAX_EVENT_SECONDS = 3600
TOP_LEVEL_KEYS = {"version", "os", "files", "permissions", "hooks", "file_exists_behavior"}


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
class AppSpec:
    files: tuple[FileMapping, ...]
    hooks: dict[str, tuple[Script, ...]]
    file_exists_behavior: str | None


def _invalid(message: str) -> EventFailed:
    return EventFailed(ErrorCode.INVALID_APPSPEC, f"appspec: {message}")


def find_appspec(archive: Path) -> Path:
    for name in APPSPEC_NAMES:
        if (archive / name).is_file():
            return archive / name
    raise _invalid("no appspec.yml at the root of the bundle")


def load_appspec(archive: Path) -> AppSpec:
    """Parse and validate the bundle's appspec, including that every path it names exists."""
    path = find_appspec(archive)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _invalid(f"not valid YAML: {exc}") from exc
    spec = parse_appspec(raw)
    check_against_bundle(spec, archive)
    return spec


def parse_appspec(raw: Any) -> AppSpec:
    """Validate the document's shape; raises EventFailed naming the offending key."""
    if not isinstance(raw, dict):
        raise _invalid("the document must be a mapping")
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        log.warning("appspec: ignoring unknown key(s) %s", ", ".join(map(str, unknown)))
    if str(raw.get("version")) not in ("0.0", "0"):
        raise _invalid(f"version must be 0.0, got {raw.get('version')!r}")
    if raw.get("os") != "linux":
        raise _invalid(f"os must be linux, got {raw.get('os')!r}")
    behavior = raw.get("file_exists_behavior")
    if behavior is not None and behavior not in FILE_EXISTS_BEHAVIORS:
        raise _invalid("file_exists_behavior must be DISALLOW, OVERWRITE or RETAIN")
    return AppSpec(
        files=_files(raw.get("files")),
        hooks=_hooks(raw.get("hooks")),
        file_exists_behavior=behavior,
    )


def _files(raw: Any) -> tuple[FileMapping, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("files must be a list of {source, destination}")
    mappings = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("source") or not entry.get("destination"):
            raise _invalid(f"files[{i}] needs source and destination")
        destination = str(entry["destination"])
        if not destination.startswith("/"):
            raise _invalid(f"files[{i}].destination must be an absolute path, got {destination!r}")
        mappings.append(FileMapping(str(entry["source"]), destination))
    return tuple(mappings)


def _hooks(raw: Any) -> dict[str, tuple[Script, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("hooks must be a mapping of event name to a list of scripts")
    hooks: dict[str, tuple[Script, ...]] = {}
    for event, scripts in raw.items():
        if event not in SCRIPTABLE_EVENTS:
            log.warning("appspec: hooks.%s is not a scriptable lifecycle event; ignored", event)
            continue
        if scripts is None:
            continue
        if not isinstance(scripts, list):
            raise _invalid(f"hooks.{event} must be a list of scripts")
        hooks[event] = tuple(_script(event, i, s) for i, s in enumerate(scripts))
    return hooks


def _script(event: str, index: int, raw: Any) -> Script:
    where = f"hooks.{event}[{index}]"
    if not isinstance(raw, dict) or not str(raw.get("location") or "").strip():
        raise _invalid(f"{where}.location is required")
    timeout = raw.get("timeout", MAX_EVENT_SECONDS)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise _invalid(f"{where}.timeout must be a positive number of seconds")
    if timeout > MAX_EVENT_SECONDS:
        log.warning(
            "appspec: %s.timeout %s is above 3600; an event is limited to one hour", where, timeout
        )
    return Script(
        str(raw["location"]).strip(), min(timeout, MAX_EVENT_SECONDS), str(raw.get("runas") or "")
    )


def check_against_bundle(spec: AppSpec, archive: Path) -> None:
    """Every files source and hook location must exist inside the bundle."""
    for i, mapping in enumerate(spec.files):
        if not bundle_path(archive, mapping.source).exists():
            raise _invalid(f"files[{i}].source {mapping.source!r} is not in the bundle")
    for event, scripts in spec.hooks.items():
        for i, script in enumerate(scripts):
            if not bundle_path(archive, script.location).is_file():
                raise EventFailed(
                    ErrorCode.SCRIPT_MISSING,
                    f"appspec: hooks.{event}[{i}].location {script.location!r} "
                    "is not in the bundle",
                    script_name=script.location,
                )


def bundle_path(archive: Path, relative: str) -> Path:
    """A path inside the archive; a leading "/" stays inside (as CodeDeploy joins paths)."""
    parts = [p for p in PurePosixPath(relative).parts if p not in ("/", ".")]
    if ".." in parts:
        raise _invalid(f"path {relative!r} leaves the bundle")
    return archive.joinpath(*parts)
