"""`deploy-agent local` and `deploy-agent validate`: the agent's own code, with no server.

The counterpart of CodeDeploy's `codedeploy-local`: a developer runs a revision's lifecycle on
this host before pushing it, or checks that its appspec and bundle would be accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from agent.appspec import APPSPEC_NAME, load_appspec
from agent.config import AgentConfig
from agent.download import LOCAL_KINDS, LocalSource
from agent.errors import EventFailed
from agent.events import EventRunner
from agent.spec import DeploymentSpec, EventCommand
from agent.unpack import check_tree, unpack
from deploy.lifecycle import IN_PLACE_EVENTS, LifecycleEvent

FILE_EXISTS = ("DISALLOW", "OVERWRITE", "RETAIN")
DEFAULT_ROOT = Path.home() / ".opendeploy" / "local-deployment-root"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = commands.add_parser("local", help="run a deployment of a local bundle on this host")
    local.add_argument("--bundle-location", required=True, type=Path)
    local.add_argument("--type", choices=LOCAL_KINDS, help="default: from the path")
    local.add_argument("--deployment-group", default="default-local-deployment-group")
    local.add_argument(
        "--events",
        help="comma-separated; default the in-place order (DownloadBundle and Install run "
        "even when left out)",
    )
    local.add_argument(
        "--file-exists-behavior",
        type=str.upper,  # any case, as CodeDeploy's agent upper-cases it
        choices=sorted(FILE_EXISTS),
    )
    local.add_argument("--appspec-filename", default=APPSPEC_NAME)
    local.add_argument("--root-dir", type=Path, default=DEFAULT_ROOT)
    local.add_argument("--install-prefix", default="")
    local.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the hooks (repeatable); they do not inherit this shell's",
    )
    local.set_defaults(run=run_local)
    validate = commands.add_parser("validate", help="check a bundle and its appspec")
    validate.add_argument("path", type=Path)
    validate.add_argument("--type", choices=LOCAL_KINDS)
    validate.add_argument("--appspec-filename", default=APPSPEC_NAME)
    validate.set_defaults(run=run_validate)


def bundle_kind(path: Path, given: str | None) -> str:
    """The bundle type: as given, else from the path (a directory, .zip, .tar, .tgz/.tar.gz)."""
    if given:
        return given
    name = path.name.lower()
    if path.is_dir():
        return "directory"
    if name.endswith((".tgz", ".tar.gz")):
        return "tgz"
    if name.endswith(".tar"):
        return "tar"
    return "zip"


def with_bundle_events(events: list[str]) -> list[str]:
    """codedeploy-local's rule: DownloadBundle and Install run even when --events leaves them
    out — after a leading ApplicationStop (the previous revision's scripts), before every
    other event — so that the listed events run the new bundle's scripts."""
    result = list(events)
    download, install = LifecycleEvent.DOWNLOAD_BUNDLE, LifecycleEvent.INSTALL
    if download not in result:
        result.insert(1 if result[:1] == [LifecycleEvent.APPLICATION_STOP] else 0, download)
    if install not in result:
        result.insert(result.index(download) + 1, install)
    return result


def run_local(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the events in order; print each result; 0 only if all succeeded."""
    events = (
        with_bundle_events([e.strip() for e in args.events.split(",")])
        if args.events
        else IN_PLACE_EVENTS
    )
    config = AgentConfig(
        server="",
        instance_name="local",
        root_dir=args.root_dir.resolve(),
        install_prefix=str(Path(args.install_prefix).resolve()) if args.install_prefix else "",
        environment=dict(item.partition("=")[::2] for item in args.env),
    )
    path = args.bundle_location.resolve()
    runner = EventRunner(
        config, LocalSource(path, bundle_kind(path, args.type)), args.appspec_filename
    )
    spec = DeploymentSpec(
        deployment_id=f"d-LOCAL{secrets.token_hex(3).upper()}",
        application_name="local",
        group_name=args.deployment_group,
        group_id=args.deployment_group,
        file_exists_behavior=args.file_exists_behavior or None,
        lifecycle_events=tuple(events),
    )
    print(f"deployment {spec.deployment_id} of {path} to group {args.deployment_group}", file=out)
    return asyncio.run(_run_events(runner, spec, events, out))


async def _run_events(
    runner: EventRunner,
    spec: DeploymentSpec,
    events: list[str] | tuple[str, ...],
    out: TextIO,
) -> int:
    for event in events:
        started = time.perf_counter()
        command = EventCommand(f"{spec.deployment_id}:{event}", event, spec)
        try:
            notes = await runner.run(command)
        except EventFailed as error:
            print(f"  {event:<18} Failed     {error.code}: {error.message}", file=out)
            for line in error.log_tail.splitlines():
                print(f"    | {line}", file=out)
            return 1
        for note in notes:
            print(f"  warning: {note}", file=out)
        print(f"  {event:<18} Succeeded  {time.perf_counter() - started:.2f}s", file=out)
    print("Succeeded", file=out)
    return 0


def run_validate(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Print whether the bundle would be accepted, with any warnings."""
    path = args.path.resolve()
    kind = bundle_kind(path, args.type)
    try:
        with tempfile.TemporaryDirectory(prefix="deploy-agent-validate-") as tmp:
            if kind == "directory":
                check_tree(path)
                archive = path
            else:
                archive = Path(tmp) / "archive"
                unpack(path, kind, archive)
            spec = load_appspec(archive, args.appspec_filename)
    except EventFailed as error:
        print(f"invalid: {error.message}", file=out)
        return 1
    for warning in spec.warnings:
        print(f"warning: {warning}", file=out)
    hooks = ", ".join(f"{event} ({len(scripts)})" for event, scripts in spec.hooks.items())
    print(
        f"valid: {len(spec.files)} file mapping(s), {len(spec.permissions)} permission "
        f"entr{'y' if len(spec.permissions) == 1 else 'ies'}, hooks: {hooks or 'none'}",
        file=out,
    )
    return 0
