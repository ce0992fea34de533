"""The deployment root: archives kept per group (max_revisions) and the last successful one;
the new revision fetched and checked once, before ApplicationStop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.config import AgentConfig
from agent.download import LocalSource
from agent.events import EventRunner
from agent.layout import DeploymentRoot
from agent.spec import DeploymentSpec, EventCommand

EMPTY_APPSPEC = "version: 0.0\nos: linux\n"


class CountingSource(LocalSource):
    """A local bundle that counts how often it is fetched."""

    fetched = 0

    async def materialize(self, spec: DeploymentSpec, bundle: Path, archive: Path) -> None:
        self.fetched += 1
        await super().materialize(spec, bundle, archive)


def runner_for(
    tmp_path: Path, appspec: str = EMPTY_APPSPEC, **config: Any
) -> tuple[EventRunner, CountingSource]:
    """A runner over a directory bundle holding `appspec`, its root under tmp_path."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "appspec.yml").write_text(appspec)
    agent = AgentConfig(server="", instance_name="t", root_dir=tmp_path / "root", **config)
    source = CountingSource(bundle, "directory")
    return EventRunner(agent, source), source


async def deploy(runner: EventRunner, deployment_id: str, events: tuple[str, ...]) -> None:
    spec = DeploymentSpec(deployment_id, application_name="a", group_name="g", group_id="g")
    for event in events:
        await runner.run(EventCommand(f"{deployment_id}:{event}", event, spec))


async def test_max_revisions_keeps_that_many_with_the_last_successful_among_them(
    tmp_path: Path,
) -> None:
    runner, _ = runner_for(tmp_path, max_revisions=3)
    await deploy(runner, "d-000", ("DownloadBundle", "Install"))  # the last successful install
    for n in range(1, 7):  # later deployments that only download (they never install)
        await deploy(runner, f"d-{n:03d}", ("DownloadBundle",))
    kept = sorted(p.name for p in (tmp_path / "root" / "g").iterdir())
    assert kept == ["d-000", "d-005", "d-006"]  # three, counting the current one
    root = DeploymentRoot(tmp_path / "root")
    assert root.last_successful_archive("g") == tmp_path / "root/g/d-000/deployment-archive"


async def test_deployment_directories_are_private(tmp_path: Path) -> None:
    await deploy(runner_for(tmp_path)[0], "d-1", ("DownloadBundle",))
    for directory in (tmp_path / "root", tmp_path / "root/g", tmp_path / "root/g/d-1"):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


async def test_an_event_reports_its_scripts_timeouts_summed_as_its_time_budget(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "scripts").mkdir(parents=True)
    for name in ("a.sh", "b.sh"):
        (bundle / "scripts" / name).write_text("#!/bin/sh\n")
    (bundle / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n"
        "    - location: scripts/a.sh\n      timeout: 100\n"
        "    - location: scripts/b.sh\n      timeout: 200\n"
        "  ApplicationStart:\n    - location: scripts/a.sh\n      timeout: 3000\n"
        "    - location: scripts/b.sh\n      timeout: 3000\n"
    )
    config = AgentConfig(server="", instance_name="t", root_dir=tmp_path / "root")
    runner = EventRunner(config, LocalSource(bundle, "directory"))
    spec = DeploymentSpec("d-1", application_name="a", group_name="g", group_id="g")

    def command(event: str) -> EventCommand:
        return EventCommand(event, event, spec)

    assert await runner.time_budget(command("DownloadBundle")) == 0  # not known before it runs
    await runner.run(command("DownloadBundle"))
    assert await runner.time_budget(command("AfterInstall")) == 300
    assert await runner.time_budget(command("ApplicationStart")) == 3600  # an event's limit
    assert await runner.time_budget(command("ValidateService")) == 0  # no scripts


async def test_the_last_successful_one_survives_even_when_max_revisions_is_one(
    tmp_path: Path,
) -> None:
    runner, _ = runner_for(tmp_path, max_revisions=1)
    await deploy(runner, "d-000", ("DownloadBundle", "Install"))
    for n in (1, 2):
        await deploy(runner, f"d-{n:03d}", ("DownloadBundle",))
    kept = sorted(p.name for p in (tmp_path / "root" / "g").iterdir())
    assert kept == ["d-000", "d-002"]


async def test_the_new_revision_is_fetched_and_checked_once_before_application_stop(
    tmp_path: Path,
) -> None:
    runner, source = runner_for(tmp_path, EMPTY_APPSPEC + "hook: {}\n")
    spec = DeploymentSpec(
        "d-1",
        application_name="a",
        group_name="g",
        group_id="g",
        lifecycle_events=("ApplicationStop", "DownloadBundle", "Install"),
    )

    def command(event: str) -> EventCommand:
        return EventCommand(event, event, spec)

    assert await runner.time_budget(command("ApplicationStop")) == 0  # the fetch comes first
    warning = "unknown key 'hook' at the top level; did you mean 'hooks'?"
    assert await runner.run(command("ApplicationStop")) == (warning,)
    assert await runner.run(command("DownloadBundle")) == ()  # said once
    assert await runner.run(command("Install")) == ()
    assert source.fetched == 1
    log = (tmp_path / "root/g/d-1/logs/scripts.log").read_text()
    assert f"appspec warning: {warning}" in log
