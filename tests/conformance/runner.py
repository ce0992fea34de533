"""Runs one conformance case (an appspec and a file tree in; files, modes, hooks, outcome out)
through `deploy-agent local`, a real process running the agent's own code."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
RECORDER = (
    '#!/bin/sh\necho "$LIFECYCLE_EVENT $(basename "$0") $DEPLOYMENT_GROUP_NAME '
    '$APPLICATION_NAME ${DEPLOY_INSTALL_PREFIX:+prefixed}" >> "$CONFORMANCE_RECORD"\n'
)


@dataclass
class Outcome:
    returncode: int
    output: str
    prefix: Path
    hooks: list[str] = field(default_factory=list)


def write_tree(root: Path, tree: dict[str, Any]) -> None:
    """Files by relative path: a string is the content, "@record" a hook that records itself,
    a mapping gives content and mode, and a trailing "/" makes an empty directory."""
    for name, spec in tree.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        content, mode = spec, None
        if isinstance(spec, dict):
            content, mode = spec.get("content", ""), spec.get("mode")
        if content == "@record":
            content, mode = RECORDER, mode or "755"
        path.write_text(str(content))
        if mode:
            path.chmod(int(str(mode), 8))


def run_case(case: dict[str, Any], workdir: Path) -> Outcome:
    bundle = workdir / "bundle"
    bundle.mkdir(parents=True)
    (bundle / case.get("appspec_filename", "appspec.yml")).write_text(case["appspec"])
    write_tree(bundle, case.get("tree", {}))
    prefix = workdir / "prefix"
    prefix.mkdir()
    for host_path, content in case.get("existing", {}).items():
        target = prefix / host_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    record = workdir / "record"
    root = workdir / "root"
    outputs = []
    code = 0
    for index, revision in enumerate(case.get("revisions", [None])):
        if revision is not None:  # a later revision of the same group: replace the bundle
            for child in sorted(bundle.rglob("*"), reverse=True):
                child.unlink() if not child.is_dir() else child.rmdir()
            (bundle / "appspec.yml").write_text(revision["appspec"])
            write_tree(bundle, revision.get("tree", {}))
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
            env={**os.environ, "CONFORMANCE_RECORD": str(record)},
        )
        outputs.append(f"--- revision {index}\n{done.stdout}{done.stderr}")
        code = done.returncode
        if code != 0:
            break
    hooks = record.read_text().splitlines() if record.exists() else []
    return Outcome(code, "".join(outputs), prefix, hooks)


def check(case: dict[str, Any], outcome: Outcome) -> None:
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
    if "hooks" in expect:
        assert outcome.hooks == expect["hooks"], outcome.hooks
