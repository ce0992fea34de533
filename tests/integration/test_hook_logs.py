"""Live hook logs on real agents: `deploy logs --follow` prints a hook's line while the hook
still runs and ends with the deployment; one target's output; the bounds on what streams
(lines per event, line length) with the full log kept on the host; `deploy watch --logs`;
the in-flight commands gauge;
clear errors for unknown deployments and targets; and the fleet's own bounds on what a
misbehaving agent sends."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.hookoutput import MAX_LINE_CHARACTERS
from deploy.lifecycle import IN_PLACE_EVENTS
from deploy.v1 import agent_pb2, common_pb2
from services.fleet.domain import OUTPUT_LINES_PER_COMMAND
from tests.agents import wait_online
from tests.cluster import Cluster, cluster, gate_script, open_gate
from tests.harness import access, simulated_agents, unique
from tests.integration.apps import App
from tests.processes import BIN, wait_until

AGENTS = 2
TAG = "logs"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), database_url, AGENTS, TAG) as running:
        yield running


def revision(root: Path, dest: str, hooks: dict[str, str]) -> Path:
    """A revision installing one file to `dest`, with these hook bodies (sh)."""
    (root / "app").mkdir(parents=True)
    (root / "app/version.txt").write_text("1\n")
    (root / "scripts").mkdir()
    lines = ["version: 0.0", "os: linux", "files:", "  - source: app", f"    destination: {dest}"]
    lines.append("hooks:")
    for hook, body in hooks.items():
        script = root / f"scripts/{hook}.sh"
        script.write_text(f"#!/bin/sh\n{body}")
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh", "      timeout: 120"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


class Follower:
    """A `deploy` command left running, its output lines read on a thread."""

    def __init__(self, running: Cluster, *args: str) -> None:
        reach = access(running.address)
        self.process = subprocess.Popen(
            [str(BIN / "deploy"), "--endpoint", reach.endpoint, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **reach.env(), **running.env},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line (read so far or later) containing `text`."""

        def seen() -> str | None:
            while True:
                try:
                    line = self._queue.get_nowait()
                except queue.Empty:
                    break
                if line is not None:
                    self.lines.append(line)
            return next((line for line in self.lines if text in line), None)

        return wait_until(seen, timeout, f"a line with {text!r}")

    def finish(self, timeout: float = 60) -> int:
        """Wait for the command to end by itself; its exit status (every line read)."""
        code = self.process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def test_logs_follow_prints_a_hook_line_while_the_hook_still_runs(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    source = revision(
        tmp_path / "v1",
        app.dest,
        {
            "BeforeInstall": 'echo "waiting on $INSTANCE"\n'
            + gate_script(gate)
            + 'echo "through the gate"\necho "a warning" >&2\n',
            "ApplicationStart": 'echo "started"\n',
        },
    )
    deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    follower = Follower(running, "logs", "--deployment-id", deployment, "--follow")
    try:
        first = running.agents[0].name
        line = follower.wait_for(f"{first} BeforeInstall: waiting on {first}")
        assert line == f"{first} BeforeInstall: waiting on {first}"
        # The hook is still blocked on the gate: nothing after it has been written yet.
        assert app.info(deployment)["status"] == "InProgress"
        assert not any("through the gate" in seen for seen in follower.lines)
        open_gate(gate, AGENTS)
        assert follower.finish() == 0  # it ends with the deployment
    finally:
        follower.stop()
    app.finished(deployment, "Succeeded")
    for agent in running.agents:
        name = agent.name
        mine = [line for line in follower.lines if line.startswith(f"{name} ")]
        assert mine == [
            f"{name} BeforeInstall: waiting on {name}",
            f"{name} BeforeInstall: through the gate",
            f"{name} BeforeInstall (stderr): a warning",
            f"{name} ApplicationStart: started",
        ]


def test_logs_of_one_target_after_the_deployment(running: Cluster, tmp_path: Path) -> None:
    app = App(running)
    source = revision(
        tmp_path / "v1",
        app.dest,
        {"AfterInstall": 'for i in 1 2 3; do echo "line $i on $INSTANCE"; done\n'},
    )
    deployment = app.deploy(app.push(source), "CodeDeployDefault.OneAtATime")
    app.finished(deployment, "Succeeded")
    second = running.agents[1].name
    printed = running.cli("logs", "--deployment-id", deployment, "--target-id", second)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == [
        f"{second} AfterInstall: line {i} on {second}" for i in (1, 2, 3)
    ]
    everyone = running.cli("logs", "--deployment-id", deployment)
    assert len(everyone.stdout.splitlines()) == 3 * AGENTS


def test_streamed_output_is_bounded_and_the_host_keeps_all_of_it(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    source = revision(
        tmp_path / "v1",
        app.dest,
        {
            # 3,000 lines at once, then one line of 100,000 characters without a line break.
            "AfterInstall": "seq 1 3000\nhead -c 100000 /dev/zero | tr '\\0' x\n",
        },
    )
    deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    app.finished(deployment, "Succeeded")
    first = running.agents[0].name
    printed = running.cli("logs", "--deployment-id", deployment, "--target-id", first)
    lines = printed.stdout.splitlines()
    numbers = [line for line in lines if line.startswith(f"{first} AfterInstall: ")]
    notes = [line for line in lines if line.startswith(f"{first} AfterInstall (agent): ")]
    assert 200 <= len(numbers) <= 1000  # the burst at least, never beyond the cap
    assert notes and all("scripts.log" in note for note in notes)
    assert numbers[0] == f"{first} AfterInstall: 1"
    log = next(
        path for path in running.agents[0].root.rglob("scripts.log") if deployment in str(path)
    ).read_text()
    assert "[stdout]3000\n" in log  # the host has every line
    assert "x" * 65536 in log  # and the long one (in pieces of 64 KiB)


def test_watch_with_logs_prints_the_output_lines(running: Cluster, tmp_path: Path) -> None:
    app = App(running)
    source = revision(tmp_path / "v1", app.dest, {"ValidateService": 'echo "healthy"\n'})
    deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    watched = running.cli("watch", deployment, "--logs")
    assert watched.returncode == 0, watched.stderr
    for agent in running.agents:
        assert f"  | {agent.name} ValidateService: healthy" in watched.stdout.splitlines()


def test_logs_of_unknown_deployments_and_targets_are_clear_errors(
    running: Cluster, tmp_path: Path
) -> None:
    unknown = running.cli("logs", "--deployment-id", "d-000000000")
    assert unknown.returncode != 0
    assert len(unknown.stderr.splitlines()) == 1 and "d-000000000" in unknown.stderr
    malformed = running.cli("logs", "--deployment-id", "nonsense")
    assert malformed.returncode != 0 and "deploymentId" in malformed.stderr
    app = App(running)
    source = revision(tmp_path / "v1", app.dest, {"ApplicationStart": "true\n"})
    deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    app.finished(deployment, "Succeeded")
    nobody = running.cli("logs", "--deployment-id", deployment, "--target-id", "nobody")
    assert nobody.returncode != 0
    assert "'nobody' is not part of deployment" in nobody.stderr


def said(command_id: str, *texts: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(
        output=agent_pb2.CommandOutput(
            command_id=command_id,
            lines=[common_pb2.OutputLine(script="s.sh", text=text) for text in texts],
        )
    )


def test_the_fleet_bounds_what_an_agent_streams_whatever_it_sends(running: Cluster) -> None:
    hostile = unique("hostile")
    names = [f"{hostile}-1", f"{hostile}-2"]

    def during(name: str, command_id: str) -> list[agent_pb2.ConnectRequest]:
        if name != names[0] or not command_id.endswith(":BeforeInstall"):
            return []
        forged = command_id.replace(names[0], names[1])
        return [
            said(command_id, "y" * 5000, "nul\x00here"),
            said(forged, "forged"),  # another instance's command
            said(command_id, *(f"{i}" for i in range(150))),  # 100 per message are taken
            *(said(command_id, *(f"{m}.{i}" for i in range(100))) for m in range(12)),
        ]

    def after(name: str, command_id: str) -> list[agent_pb2.ConnectRequest]:
        return [said(command_id, "too late")]  # the command has finished

    app = App(running)
    app.ok(
        "update-deployment-group",
        "--application-name",
        app.name,
        "--current-deployment-group-name",
        app.group,
        "--on-premises-instance-tag-filters",
        f"Key=cluster,Value={hostile},Type=KEY_AND_VALUE",
    )
    with simulated_agents(running.address, names, {"cluster": hostile}, during=during, after=after):
        wait_online(running.address, names)
        source = revision(Path(running.workdir) / hostile, app.dest, {})
        deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
        app.finished(deployment, "Succeeded")
    printed = running.cli("logs", "--deployment-id", deployment)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == OUTPUT_LINES_PER_COMMAND
    assert all(line.startswith(f"{names[0]} BeforeInstall: ") for line in lines)
    texts = [line.removeprefix(f"{names[0]} BeforeInstall: ") for line in lines]
    assert texts[0] == "y" * (MAX_LINE_CHARACTERS - 1) + "…"
    assert texts[1] == "nul\ufffdhere"
    assert texts[2:103] == [*(f"{i}" for i in range(100)), "0.0"]  # 100 of the 150 sent
    assert "forged" not in texts and "too late" not in texts


def in_flight(running: Cluster) -> dict[str, float]:
    """opendeploy_commands_in_flight by state, scraped from the server."""
    text = urllib.request.urlopen(running.server.metrics_url, timeout=5).read().decode()
    found = re.findall(r'^opendeploy_commands_in_flight\{state="(\w+)"\} (\S+)$', text, re.M)
    return {state: float(value) for state, value in found}


def test_commands_in_flight_are_counted_while_their_hooks_run(
    running: Cluster, tmp_path: Path
) -> None:
    app = App(running)
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    source = revision(tmp_path / "v1", app.dest, {"AfterInstall": gate_script(gate)})
    deployment = app.deploy(app.push(source), "CodeDeployDefault.AllAtOnce")
    held = len(IN_PLACE_EVENTS) - 1 - IN_PLACE_EVENTS.index("AfterInstall")  # sent with it
    wait_until(
        lambda: in_flight(running) == {"Pending": held * AGENTS, "InProgress": float(AGENTS)},
        60,
        "both AfterInstall hooks counted in progress, the events after them pending",
    )
    open_gate(gate, AGENTS)
    app.finished(deployment, "Succeeded")
    assert in_flight(running) == {"Pending": 0.0, "InProgress": 0.0}
