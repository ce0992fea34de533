"""appspec.yml: parsed into plain data and checked against the bundle before the host changes.

What CodeDeploy accepts is accepted with the same meaning; where its agent is lenient and its
documentation strict, OpenDeploy accepts and warns (docs/agent.md lists where).
"""

from __future__ import annotations

import difflib
import functools
import grp
import pwd
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from agent.errors import ErrorCode, EventFailed
from deploy.lifecycle import SCRIPTED_EVENTS, TRAITS, LifecycleEvent

APPSPEC_NAME = "appspec.yml"
FALLBACK_NAMES = ("appspec.yaml", "appspec.yml")
SYSTEM_EVENTS = tuple(event for event in LifecycleEvent if TRAITS[event].scripts is None)
"""Events the agent or the server carries out: hooks given for them are ignored."""
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
MAX_EVENT_SECONDS = 3600
TOP_LEVEL_KEYS = {"version", "os", "files", "permissions", "hooks", "file_exists_behavior"}
FILE_KEYS = {"source", "destination"}
SCRIPT_KEYS = {"location", "timeout", "runas"}
CONTEXT_KEYS = {"name", "type", "range"}
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
_ACL_KINDS = {"u": "user", "user": "user", "g": "group", "group": "group"}
_ACL_KINDS |= {"m": "mask", "mask": "mask", "o": "other", "other": "other"}
_ACL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?\Z")
_ACL_PERMS = re.compile(r"^(?:[0-7]|[rwx-]{1,3})\Z")
_SE_NAME = re.compile(r"^[A-Za-z0-9_]+\Z")
_SE_RANGE = re.compile(r"^s(\d+)(?:-s(\d+))?(?::(c\d+(?:\.c\d+)?(?:,c\d+(?:\.c\d+)?)*))?\Z")
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
    acls: tuple[AclEntry, ...] = ()
    context: SeContext | None = None


@dataclass(frozen=True)
class AclEntry:
    """One `acls` entry beyond the mode's base entries (which `mode` sets)."""

    kind: str
    """user, group, mask or other."""
    name: str
    perms: str
    """Always three characters, "rwx" with "-" for what is not granted."""
    default: bool = False

    def __str__(self) -> str:
        return f"{'default:' if self.default else ''}{self.kind}:{self.name}:{self.perms}"


@dataclass(frozen=True)
class SeContext:
    """An SELinux file context: `semanage fcontext -a [-s name] -t type [-r range]`."""

    type: str
    name: str = ""
    range: str = ""


@dataclass(frozen=True)
class AppSpec:
    files: tuple[FileMapping, ...]
    hooks: dict[str, tuple[Script, ...]]
    file_exists_behavior: str | None
    permissions: tuple[Permission, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """What was accepted but deserves the author's attention (unknown keys, long timeouts)."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 as CodeDeploy reads it, except that an unquoted leading-zero number (mode: 0644)
    stays the digits the author wrote instead of becoming an octal integer. Read by libyaml
    where PyYAML has it (7 times faster than its pure-Python reader)."""


def _int_or_digits(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    if isinstance(value, str) and _LEADING_ZERO_INT.match(value):
        return value
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_digits)


def _invalid(message: str) -> EventFailed:
    return EventFailed(ErrorCode.INVALID_APPSPEC, f"appspec: {message}")


def shown(value: Any) -> str:
    """A value in a message as the author wrote it: text quoted but not escaped (a Windows
    path keeps single backslashes), anything else as Python shows it."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def find_appspec(archive: Path, filename: str = APPSPEC_NAME) -> Path:
    """The requested name, then appspec.yaml, then appspec.yml (CodeDeploy's fallbacks)."""
    for name in (filename, *FALLBACK_NAMES):
        if (archive / name).is_file():
            return archive / name
    raise _invalid(f"no {filename} at the root of the bundle")


def read_appspec(text: str, filename: str = APPSPEC_NAME) -> AppSpec:
    """Parse and validate the document alone (no bundle); a YAML error names the file, line
    and column."""
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        raise _invalid(f"{filename} is not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise _invalid(f"{filename} is not valid YAML: {exc}") from None
    return parse_appspec(raw)


_read_remembered = functools.lru_cache(maxsize=2)(read_appspec)
"""The same document parsed once: each event of a deployment reads its appspec again (a hook
may have changed the bundle, so the bundle is checked again each time), but parsing its YAML
costs a millisecond or more, several times per event. An AppSpec is never changed. Two are
kept, the deployment's and the last successful revision's (ApplicationStop's scripts): an
appspec's size has no limit of its own, so no more are held than are in use."""


def load_appspec(
    archive: Path, filename: str = APPSPEC_NAME, events: Collection[str] | None = None
) -> AppSpec:
    """Parse and validate the bundle's appspec, including that the paths it names exist."""
    path = find_appspec(archive, filename)
    spec = _read_remembered(path.read_text(), path.name)
    missing = check_against_bundle(spec, archive, events)
    return replace(spec, warnings=spec.warnings + tuple(missing)) if missing else spec


def parse_appspec(raw: Any) -> AppSpec:
    """Validate the document's shape; raises EventFailed naming the offending key."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise _invalid("the file is empty")
    if not isinstance(raw, dict):
        raise _invalid("the document must be a mapping of keys (version, os, files, hooks, …)")
    warnings = _unknown_keys(raw, TOP_LEVEL_KEYS, "")
    if raw.get("version") not in (0, 0.0, "0.0"):
        raise _invalid(f"version must be 0.0, got {shown(raw.get('version'))}")
    os_name = raw.get("os")
    if os_name == "windows":
        raise _invalid("os windows is not supported: OpenDeploy agents run on linux")
    if os_name != "linux":
        raise _invalid(f"os must be linux, got {shown(os_name)}")
    behavior = raw.get("file_exists_behavior")
    if behavior is not None and behavior not in FILE_EXISTS_BEHAVIORS:
        raise _invalid(
            f"file_exists_behavior must be DISALLOW, OVERWRITE or RETAIN, got {shown(behavior)}"
        )
    spec = AppSpec(
        files=_files(raw.get("files"), warnings),
        hooks=_hooks(raw.get("hooks"), warnings),
        file_exists_behavior=behavior,
        permissions=_permissions(raw.get("permissions"), warnings),
        warnings=tuple(warnings),
    )
    return spec


def _unknown_keys(raw: dict[Any, Any], known: Collection[str], where: str) -> list[str]:
    """A warning per key CodeDeploy would ignore, with the known key it most resembles."""
    place = f" in {where}" if where else " at the top level"
    return [
        f"unknown key {shown(key)}{place}{_did_you_mean(str(key), known) or '; ignored'}"
        for key in raw
        if key not in known
    ]


def _did_you_mean(word: str, known: Collection[str]) -> str:
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {shown(by_lower[close[0]])}?" if close else ""


def _files(raw: Any, warnings: list[str]) -> tuple[FileMapping, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("files must be a list of {source, destination}")
    mappings = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise _invalid(f"files[{i}] must be a mapping with source and destination")
        warnings += _unknown_keys(entry, FILE_KEYS, f"files[{i}]")
        for key in ("source", "destination"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise _invalid(f"files[{i}].{key} is required")
        destination = entry["destination"].strip()
        if not destination.startswith("/"):
            raise _invalid(
                f"files[{i}].destination must be an absolute path, got {shown(destination)}"
            )
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
        if event not in SCRIPTED_EVENTS:
            hint = _did_you_mean(str(event), SCRIPTED_EVENTS)
            warnings.append(f"hooks.{event} is not a CodeDeploy lifecycle event{hint}")
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
        raise _invalid(f"{where}.timeout must be a number of seconds, got {shown(value)}")
    match = re.match(r"^\s*(\d+)", str(value))
    seconds = int(match.group(1)) if match else 0
    if seconds <= 0:
        raise _invalid(f"{where}.timeout must be a positive number of seconds, got {shown(value)}")
    if seconds > MAX_EVENT_SECONDS:
        warnings.append(f"{where}.timeout {seconds} is above 3600; an event still ends at one hour")
        return MAX_EVENT_SECONDS
    return seconds


def _script(event: str, index: int, raw: Any, warnings: list[str]) -> Script:
    where = f"hooks.{event}[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be a mapping with location")
    warnings += _unknown_keys(raw, SCRIPT_KEYS, where)
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
    warnings += _unknown_keys(raw, PERMISSION_KEYS, where)
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
        raise _invalid(f"{where}.mode must be 1-4 octal digits, got {shown(raw['mode'])}")
    return Permission(
        object=str(raw["object"]).strip(),
        pattern=str(raw.get("pattern") or "**"),
        excepts=tuple(str(e) for e in excepts),
        types=frozenset(types),
        owner=str(raw.get("owner") or ""),
        group=str(raw.get("group") or ""),
        mode=mode.rjust(3, "0") if mode else "",
        acls=_acls(f"{where}.acls", raw.get("acls")),
        context=_context(f"{where}.context", raw.get("context"), warnings),
    )


def _acls(where: str, raw: Any) -> tuple[AclEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid(f"{where} must be a list of entries like u:NAME:rwx")
    return tuple(_acl_entry(f"{where}[{i}]", entry) for i, entry in enumerate(raw))


def _acl_entry(where: str, raw: Any) -> AclEntry:
    """CodeDeploy's form, [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:][name:]perms; a name
    alone is a user. The base entries (u::, g::, o::) come from `mode`."""
    parts = str(raw).strip().split(":")
    default = parts[0] in ("d", "default") and len(parts) > 1
    parts = parts[1:] if default else parts
    if len(parts) == 3 and parts[0] in _ACL_KINDS:
        kind, name, perms = _ACL_KINDS[parts[0]], parts[1], parts[2]
    elif len(parts) == 2 and _ACL_KINDS.get(parts[0]) in ("mask", "other"):
        kind, name, perms = _ACL_KINDS[parts[0]], "", parts[1]
    elif len(parts) == 2 and parts[0] not in _ACL_KINDS:
        kind, name, perms = "user", parts[0], parts[1]
    else:
        raise _invalid(f"{where} {shown(raw)} is not [d:]u|g|m|o:[name:]perms")
    if not _ACL_PERMS.match(perms):
        raise _invalid(f"{where} {shown(raw)}: permissions must be one octal digit or rwx")
    if kind in ("mask", "other") and name:
        raise _invalid(f"{where} {shown(raw)}: {kind} entries have no name")
    if name and not _ACL_NAME.match(name):  # it becomes part of setfacl's entry list
        raise _invalid(f"{where} {shown(raw)}: {shown(name)} is not a user or group name")
    if kind in ("user", "group", "other") and not name and not default:
        raise _invalid(f"{where} {shown(raw)}: set the base {kind} entry with mode")
    return AclEntry(kind, name, rwx(perms), default)


def rwx(perms: str) -> str:
    """One octal digit or rwx letters as setfacl's three characters ("5" → "r-x")."""
    if perms.isdigit():
        digit = int(perms)
        return "".join(c if digit & bit else "-" for c, bit in (("r", 4), ("w", 2), ("x", 1)))
    return "".join(c if c in perms else "-" for c in "rwx")


def _context(where: str, raw: Any, warnings: list[str]) -> SeContext | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be a mapping with type (and name, range)")
    warnings += _unknown_keys(raw, CONTEXT_KEYS, where)
    values = {key: str(raw.get(key) or "").strip() for key in CONTEXT_KEYS}
    for key in ("name", "type"):
        if values[key] and not _SE_NAME.match(values[key]):
            raise _invalid(f"{where}.{key} {shown(values[key])} is not an SELinux identifier")
    if not values["type"]:
        raise _invalid(f"{where}.type is required")
    if values["range"] and not _range_ok(values["range"]):
        raise _invalid(
            f"{where}.range {shown(values['range'])} is not s<n>[-s<m>][:c<a>[.c<b>],…] "
            "(categories up to c1023, the high level not below the low)"
        )
    return SeContext(values["type"], values["name"], values["range"])


def _range_ok(text: str) -> bool:
    match = _SE_RANGE.match(text)
    if match is None:
        return False
    low, high, categories = match.group(1), match.group(2), match.group(3) or ""
    if high is not None and int(high) < int(low):
        return False
    numbers = [int(c) for c in re.findall(r"c(\d+)", categories)]
    spans = re.findall(r"c(\d+)\.c(\d+)", categories)
    return (
        all(n <= 1023 for n in numbers)
        and len(numbers) == len(set(numbers))
        and all(int(a) < int(b) for a, b in spans)
    )


def unknown_principals(spec: AppSpec) -> list[str]:
    """Every owner and group of `permissions` (and user or group its `acls` name) this host
    does not know — asked when Install starts, after BeforeInstall (whose package may create
    them), before anything is copied."""
    unknown = []
    for i, permission in enumerate(spec.permissions):
        where = f"permissions[{i}]"
        if permission.owner and not _known(pwd.getpwnam, permission.owner):
            unknown.append(f"{where}.owner {shown(permission.owner)} is not a user on this host")
        if permission.group and not _known(grp.getgrnam, permission.group):
            unknown.append(f"{where}.group {shown(permission.group)} is not a group on this host")
        for entry in permission.acls:
            lookup = pwd.getpwnam if entry.kind == "user" else grp.getgrnam
            if entry.name and not _known(lookup, entry.name):
                unknown.append(
                    f"{where}.acls {entry} names {shown(entry.name)}, not a {entry.kind} "
                    "on this host"
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
) -> list[str]:
    """Every files source must exist inside the bundle, and every hook script of the events
    this deployment runs (`events`; None: all); a missing script of another event is a
    warning (returned), as it would only fail if that event ran."""
    warnings = []
    for i, mapping in enumerate(spec.files):
        if not bundle_path(archive, mapping.source).exists():
            raise _invalid(f"files[{i}].source {shown(mapping.source)} is not in the bundle")
    for event, scripts in spec.hooks.items():
        for i, script in enumerate(scripts):
            where = f"hooks.{event}[{i}].location {shown(script.location)}"
            if bundle_path(archive, script.location).is_file():
                continue
            if events is not None and event not in events:
                warnings.append(
                    f"{where} is not in the bundle; this deployment does not run {event}"
                )
                continue
            raise EventFailed(
                ErrorCode.SCRIPT_MISSING,
                f"appspec: {where} is not in the bundle",
                script_name=script.location,
            )
    return warnings


def bundle_path(archive: Path, relative: str) -> Path:
    """A path inside the archive; a leading "/" stays inside (as CodeDeploy joins paths)."""
    parts = [p for p in PurePosixPath(relative).parts if p not in ("/", ".")]
    if ".." in parts:
        raise _invalid(f"path {shown(relative)} leaves the bundle")
    return archive.joinpath(*parts)
