"""Runs one conformance case (an appspec and a file tree in; files, modes, hooks, outcome out)
through `deploy-agent local`, a real process running the agent's own code."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.archives import archive_of

BIN = Path(sys.executable).parent
RECORDER = (
    '#!/bin/sh\necho "$LIFECYCLE_EVENT $(basename "$0") $DEPLOYMENT_GROUP_NAME '
    '${DEPLOY_INSTALL_PREFIX:+prefixed}" >> "$CONFORMANCE_RECORD"\n'
)


@dataclass
class Outcome:
    returncode: int
    output: str
    prefix: Path
    hooks: list[str] = field(default_factory=list)


def write_tree(root: Path, tree: dict[str, Any]) -> None:
    """Files by relative path: a string is the content, "@record" a hook that records itself,
    a mapping gives content and mode (or {link: text}, a symlink), and a trailing "/" makes an
    empty directory."""
    for name, spec in tree.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, dict) and "link" in spec:
            path.symlink_to(spec["link"])
            continue
        content, mode = spec, None
        if isinstance(spec, dict):
            content, mode = spec.get("content", ""), spec.get("mode")
        if content == "@record":
            content, mode = RECORDER, mode or "755"
        path.write_text(str(content))
        if mode:
            path.chmod(int(str(mode), 8))


def revisions(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(appspec text, tree) of each revision deployed in turn to the same group."""
    first = (case["appspec"], case.get("tree", {}))
    later = [(r["appspec"], r.get("tree", {})) for r in case.get("revisions", [None])[1:]]
    return [first, *later]


def write_bundle(
    bundle: Path, appspec: str, tree: dict[str, Any], filename: str, case: dict[str, Any]
) -> Path:
    """The revision as a directory, or as the case's archive (`archive: zip`, optionally
    wrapped in one top-level directory `wrap`)."""
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    (bundle / filename).write_text(appspec)
    write_tree(bundle, tree)
    if "archive" not in case:
        return bundle
    packed = bundle.with_name(f"{bundle.name}.{case['archive']}")
    return archive_of(bundle, packed, case["archive"], case.get("wrap", ""))


def place_existing(prefix: Path, existing: dict[str, str]) -> None:
    for host_path, content in existing.items():
        target = prefix / host_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def failure_text(event: str, code: str, message: str, log_tail: str) -> str:
    """How a failed event is printed (the same by `deploy-agent local` and here)."""
    lines = [f"  {event:<18} Failed     {code}: {message}"]
    lines += [f"    | {line}" for line in log_tail.splitlines()]
    return "\n".join(lines) + "\n"


def run_case(case: dict[str, Any], workdir: Path) -> Outcome:
    """Through `deploy-agent local`, one run per revision."""
    prefix, record, root = workdir / "prefix", workdir / "record", workdir / "root"
    prefix.mkdir(parents=True)
    place_existing(prefix, case.get("existing", {}))
    filename = case.get("appspec_filename", "appspec.yml")
    outputs, code = [], 0
    for index, (appspec, tree) in enumerate(revisions(case)):
        bundle = write_bundle(workdir / "bundle", appspec, tree, filename, case)
        args = [
            str(BIN / "deploy-agent"),
            "local",
            "--bundle-location",
            str(bundle),
            "--root-dir",
            str(root),
            "--install-prefix",
            str(prefix),
            "--deployment-group",
            case.get("group", "conformance"),
            "--env",
            f"CONFORMANCE_RECORD={record}",
        ]
        options = case.get("options", {})
        if "file_exists_behavior" in options:
            args += ["--file-exists-behavior", options["file_exists_behavior"]]
        if "events" in options:
            args += ["--events", ",".join(options["events"])]
        if "appspec_filename" in case:
            args += ["--appspec-filename", case["appspec_filename"]]
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=60,
        )
        outputs.append(f"--- revision {index}\n{done.stdout}{done.stderr}")
        code = done.returncode
        if code != 0:
            break
    hooks = record.read_text().splitlines() if record.exists() else []
    return Outcome(code, "".join(outputs), prefix, hooks)


def check(case: dict[str, Any], outcome: Outcome, app: str = "local") -> None:
    """Compare with the case's expectations; "{app}" in expected hook records is the
    application's name (`local` for `deploy-agent local`)."""
    expect = case["expect"]
    assert "Traceback" not in outcome.output, outcome.output
    if expect.get("outcome", "Succeeded") == "Succeeded":
        assert outcome.returncode == 0, outcome.output
    else:
        assert outcome.returncode != 0, outcome.output
        failed = f"{expect['failed_event']:<18} Failed"
        assert failed in outcome.output, outcome.output
        assert expect["error"] in outcome.output, outcome.output
    for host_path, content in expect.get("files", {}).items():
        path = outcome.prefix / host_path.lstrip("/")
        assert path.is_file(), f"{host_path} missing\n{outcome.output}"
        assert path.read_text() == content, f"{host_path}: {path.read_text()!r}"
    for host_path in expect.get("absent", []):
        assert not (outcome.prefix / host_path.lstrip("/")).exists(), f"{host_path} exists"
    for host_path in expect.get("dirs", []):
        assert (outcome.prefix / host_path.lstrip("/")).is_dir(), f"{host_path} is not a dir"
    for host_path, mode in expect.get("modes", {}).items():
        actual = oct(stat.S_IMODE((outcome.prefix / host_path.lstrip("/")).stat().st_mode))[2:]
        assert actual == str(mode), f"{host_path}: mode {actual}, expected {mode}"
    for host_path, text in expect.get("links", {}).items():
        path = outcome.prefix / host_path.lstrip("/")
        assert path.is_symlink(), f"{host_path} is not a link"
        assert str(path.readlink()) == text, f"{host_path} -> {path.readlink()}"
    for host_path, entries in expect.get("acls", {}).items():
        path = outcome.prefix / host_path.lstrip("/")
        acl = subprocess.run(["getfacl", "-c", str(path)], capture_output=True, text=True)
        lines = [line.split("#")[0].strip() for line in acl.stdout.splitlines()]
        for entry in entries:  # "#effective:…" comments aside
            assert entry in lines, f"{host_path}: {acl.stdout}{acl.stderr}"
    for warning in expect.get("warnings", []):
        assert f"warning: {warning}" in outcome.output, outcome.output
    if "hooks" in expect:
        expected = [h.replace("{app}", app) for h in expect["hooks"]]
        assert outcome.hooks == expected, outcome.hooks
