"""An application on a test cluster, driven through the real CLI, and bundles to deploy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tests.cluster import Cluster, gate_script
from tests.harness import unique
from tests.processes import wait_until


def bundle(
    root: Path,
    version: str,
    dest: str,
    *,
    validate_exit: int = 0,
    gate: Path | None = None,
    started: Path | None = None,
    gated_event: str = "BeforeInstall",
    extra: str = "",
) -> Path:
    """Files app/* → `dest`; ValidateService exits `validate_exit`; with `started`, the
    `gated_event` hook records its start there (and with `gate` then blocks until the FIFO is
    opened)."""
    (root / "app").mkdir(parents=True)
    (root / "app/version.txt").write_text(f"{version}\n")
    if extra:
        (root / f"app/{extra}").write_text("only in this revision\n")
    (root / "scripts").mkdir()
    scripts = {
        "BeforeInstall": "#!/bin/sh\n",
        "ValidateService": f"#!/bin/sh\nexit {validate_exit}\n",
    }
    if started is not None:
        scripts[gated_event] = (
            f'#!/bin/sh\necho "$INSTANCE" >> {started}\n'
            + (gate_script(gate) if gate is not None else "")
            + scripts.get(gated_event, "").removeprefix("#!/bin/sh\n")
        )
    lines = ["version: 0.0", "os: linux", "files:", "  - source: app", f"    destination: {dest}"]
    lines.append("hooks:")
    for hook, body in scripts.items():
        script = root / f"scripts/{hook}.sh"
        script.write_text(body)
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh", "      timeout: 60"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def push(running: Cluster, app: str, source: Path) -> str:
    result = running.cli("push", "--application-name", app, "--source", str(source))
    assert result.returncode == 0, result.stderr
    return str(result.json()["revision"]["registryLocation"]["digest"])


def deploy(running: Cluster, app: str, group: str, digest: str, config: str) -> str:
    result = running.cli(
        "create-deployment",
        "--application-name",
        app,
        "--deployment-group-name",
        group,
        "--deployment-config-name",
        config,
        "--registry-location",
        f"digest={digest},bundleType=zip",
    )
    assert result.returncode == 0, result.stderr
    return str(result.json()["deploymentId"])


def setup_app(running: Cluster, app: str, group: str, tag_filter: str) -> None:
    assert running.cli("create-application", "--application-name", app).returncode == 0
    created = running.cli(
        "create-deployment-group",
        "--application-name",
        app,
        "--deployment-group-name",
        group,
        "--on-premises-instance-tag-filters",
        tag_filter,
    )
    assert created.returncode == 0, created.stderr


class App:
    """One application and deployment group on the module's cluster."""

    def __init__(self, running: Cluster, *group_flags: str) -> None:
        """A new application whose group targets every agent of `running` (tag cluster)."""
        tag = running.agents[0].name.rsplit("-", 1)[0]
        self.running = running
        self.name, self.group = unique("rb"), "g"
        self.dest = f"/opt/{self.name}"
        """Each application installs elsewhere: the hosts are shared by the module's tests."""
        self.ok("create-application", "--application-name", self.name)
        self.ok(
            "create-deployment-group",
            "--application-name",
            self.name,
            "--deployment-group-name",
            self.group,
            "--on-premises-instance-tag-filters",
            f"Key=cluster,Value={tag},Type=KEY_AND_VALUE",
            *group_flags,
        )

    def ok(self, *args: str) -> Any:
        result = self.running.cli(*args)
        assert result.returncode == 0, result.stderr
        return result.json() if result.stdout.strip() else None

    def push(self, source: Path) -> str:
        pushed = self.ok("push", "--application-name", self.name, "--source", str(source))
        return str(pushed["revision"]["registryLocation"]["digest"])

    def deploy(self, digest: str, config: str, *flags: str) -> str:
        created = self.ok(
            "create-deployment",
            "--application-name",
            self.name,
            "--deployment-group-name",
            self.group,
            "--deployment-config-name",
            config,
            "--registry-location",
            f"digest={digest},bundleType=zip",
            *flags,
        )
        return str(created["deploymentId"])

    def info(self, deployment_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self.ok("get-deployment", "--deployment-id", deployment_id)[
            "deploymentInfo"
        ]
        return info

    def finished(self, deployment_id: str, status: str) -> dict[str, Any]:
        self.running.cli("wait", "deployment-successful", "--deployment-id", deployment_id)
        info = self.info(deployment_id)
        assert info["status"] == status, info
        return info

    def target(self, deployment_id: str, instance: str) -> dict[str, Any]:
        target: dict[str, Any] = self.ok(
            "get-deployment-target", "--deployment-id", deployment_id, "--target-id", instance
        )["deploymentTarget"]["instanceTarget"]
        return target

    def group_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.ok(
            "get-deployment-group",
            "--application-name",
            self.name,
            "--deployment-group-name",
            self.group,
        )["deploymentGroupInfo"]
        return info


def gated(app: App, tmp_path: Path, version: str) -> tuple[Path, Path, Path]:
    """A revision whose BeforeInstall blocks on a FIFO gate: (source, gate, started)."""
    gate, started = tmp_path / "gate", tmp_path / "started"
    os.mkfifo(gate)
    source = bundle(tmp_path / f"v{version}", version, app.dest, gate=gate, started=started)
    return source, gate, started


def wait_started(started: Path, count: int) -> None:
    wait_until(
        lambda: started.exists() and len(started.read_text().split()) == count,
        60,
        f"{count} BeforeInstall hook(s) to have started",
    )


def hook_processes(gate: Path) -> list[int]:
    """Processes whose command line names the gate (the gated hooks' `cat`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(gate).encode() in command:
            found.append(int(entry.name))
    return found


def installed(app: App) -> list[str]:
    return [
        (agent.prefix / app.dest.lstrip("/") / "version.txt").read_text().strip()
        for agent in app.running.agents
    ]


HELLO_WEB = Path(__file__).resolve().parents[2] / "examples" / "hello-web"


def hello_web(root: Path, version: str, *, validate_exit: int = 0) -> Path:
    """examples/hello-web at `version` (it answers "hello-web version V on NAME"); with a
    non-zero `validate_exit` its ValidateService fails."""
    shutil.copytree(HELLO_WEB, root)
    (root / "app" / "VERSION").write_text(version + "\n")
    if validate_exit:
        (root / "scripts" / "validate.sh").write_text(f"#!/bin/sh\nexit {validate_exit}\n")
    return root
