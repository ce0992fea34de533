"""Runs one lifecycle event; which revision its scripts come from is a table, not branches."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from agent.appspec import APPSPEC_NAME, MAX_EVENT_SECONDS, load_appspec
from agent.config import AgentConfig
from agent.download import BundleSource
from agent.errors import ErrorCode, EventFailed
from agent.hooks import ScriptLog, run_scripts
from agent.install import install, preflight
from agent.layout import DeploymentRoot
from agent.output import LiveOutput
from agent.spec import DeploymentSpec, EventCommand
from deploy.lifecycle import LifecycleEvent, RunBy, ScriptSource, traits_of

log = logging.getLogger(__name__)


class EventRunner:
    """Executes lifecycle commands on this host; failures raise EventFailed."""

    def __init__(
        self, config: AgentConfig, source: BundleSource, appspec_filename: str = APPSPEC_NAME
    ) -> None:
        self._config = config
        self._source = source
        self._appspec = appspec_filename
        self._root = DeploymentRoot(config.root_dir)

    async def run(self, command: EventCommand, live: LiveOutput | None = None) -> tuple[str, ...]:
        """Run one event (its hooks' output lines also go to `live`); returns what the author
        of the revision should read (the appspec's warnings, once per deployment, from the
        event that first checked the bundle)."""
        spec, event = command.spec, command.event
        self._root.make_deployment_dir(spec.group_id, spec.deployment_id)
        if event == LifecycleEvent.DOWNLOAD_BUNDLE:
            return await self._prepare(spec)
        if event == LifecycleEvent.INSTALL:
            await asyncio.to_thread(self._install, spec)
            return ()
        notes: tuple[str, ...] = ()
        if event == LifecycleEvent.APPLICATION_STOP and spec.installs:
            notes = await self._prepare_before_stop(spec)
        await self._scripts(event, spec, live)
        return notes

    async def _prepare_before_stop(self, spec: DeploymentSpec) -> tuple[str, ...]:
        """The new revision is fetched and checked before the running application is stopped:
        a revision that cannot install leaves the application running."""
        try:
            return await self._prepare(spec)
        except EventFailed as error:
            raise EventFailed(
                error.code,
                f"{error.message} (the new revision was checked before ApplicationStop; the "
                "running application was not stopped)",
                script_name=error.script_name,
                log_tail=error.log_tail,
            ) from error

    async def _prepare(self, spec: DeploymentSpec) -> tuple[str, ...]:
        """DownloadBundle's work: fetch and unpack the revision, check its appspec against the
        bundle and the host, prune old deployment directories. Done once per deployment (at
        ApplicationStop when that comes first); later only the checks run again, as a hook may
        have changed the host. Returns the appspec's warnings the first time."""
        group, deployment = spec.group_id, spec.deployment_id
        archive = self._root.archive(group, deployment)
        ready = self._root.bundle_ready(group, deployment)
        first = not ready.exists()
        if first:
            await self._source.materialize(spec, self._root.bundle_file(group, deployment), archive)
        appspec = await asyncio.to_thread(load_appspec, archive, self._appspec, spec.checked_events)
        await asyncio.to_thread(
            preflight,
            appspec,
            archive,
            self._config.install_prefix,
            self._root.cleanup_file(group),
        )
        if not first:
            return ()
        await asyncio.to_thread(self._prune, group, deployment)
        await asyncio.to_thread(self._record_warnings, spec, appspec.warnings)
        ready.touch()
        return appspec.warnings

    def _record_warnings(self, spec: DeploymentSpec, warnings: tuple[str, ...]) -> None:
        """Into the agent's log and the deployment's scripts.log, where its author looks."""
        if not warnings:
            return
        script_log = ScriptLog(self._root.script_log(spec.group_id, spec.deployment_id))
        try:
            for warning in warnings:
                script_log.record(f"appspec warning: {warning}\n")
                log.warning(
                    "appspec warning",
                    extra={"fields": {"deployment_id": spec.deployment_id, "warning": warning}},
                )
        finally:
            script_log.close()

    def _install(self, spec: DeploymentSpec) -> None:
        group, deployment = spec.group_id, spec.deployment_id
        archive = self._root.archive(group, deployment)
        appspec = load_appspec(archive, self._appspec, spec.checked_events)
        try:
            install(
                appspec,
                archive,
                self._config.install_prefix,
                self._root.cleanup_file(group),
                spec.file_exists_behavior,
            )
        except OSError as exc:
            raise EventFailed(ErrorCode.INSTALL_FAILED, f"install failed: {exc}") from exc
        self._root.record_last_successful(group, deployment)

    async def time_budget(self, command: EventCommand) -> int:
        """How long the event may run: its scripts' timeouts summed, at most an hour; 0 when
        that is not known before it runs (DownloadBundle, Install, an unreadable appspec)."""
        event, spec = command.event, command.spec
        if traits_of(event).run_by is RunBy.AGENT:
            return 0
        if event == LifecycleEvent.APPLICATION_STOP and spec.installs:
            return 0  # the new revision is fetched first, which has its own timeout
        try:  # what is wrong here fails the event when it runs, with the reason
            archive = self._script_archive(event, spec)
            if archive is None or not archive.is_dir():
                return 0
            appspec = await asyncio.to_thread(
                load_appspec, archive, self._appspec, spec.checked_events
            )
        except (EventFailed, OSError):
            return 0
        scripts = appspec.hooks.get(event, ())
        return min(sum(s.timeout_seconds for s in scripts), MAX_EVENT_SECONDS)

    def _script_archive(self, event: str, spec: DeploymentSpec) -> Path | None:
        """Where the event's scripts come from: this deployment's revision, or the group's
        last successful one (none: the event has nothing to run)."""
        group, deployment = spec.group_id, spec.deployment_id
        current = traits_of(event).scripts is not ScriptSource.LAST_SUCCESSFUL
        if current and spec.installs:
            return self._root.archive(group, deployment)
        # a blue/green rollback reinstalls nothing: its hooks are the installed ones
        return self._root.last_successful_archive(group)

    async def _scripts(self, event: str, spec: DeploymentSpec, live: LiveOutput | None) -> None:
        archive = self._script_archive(event, spec)
        if archive is None:
            return
        appspec = await asyncio.to_thread(load_appspec, archive, self._appspec, spec.checked_events)
        await run_scripts(
            event,
            appspec.hooks.get(event, ()),
            archive,
            self._environment(event, spec),
            self._root.script_log(spec.group_id, spec.deployment_id),
            live,
        )

    def _environment(self, event: str, spec: DeploymentSpec) -> dict[str, str]:
        """What a hook sees besides its user's PATH/HOME/LANG: the configured `environment`,
        CodeDeploy's variables and the revision's BUNDLE_* — never the agent's own environment
        (which may hold credentials)."""
        return {
            **self._config.environment,
            **spec.revision.variables(),
            "LIFECYCLE_EVENT": event,
            "DEPLOYMENT_ID": spec.deployment_id,
            "APPLICATION_NAME": spec.application_name,
            "DEPLOYMENT_GROUP_NAME": spec.group_name,
            "DEPLOYMENT_GROUP_ID": spec.group_id,
            "DEPLOY_INSTALL_PREFIX": self._config.install_prefix,
        }

    def _prune(self, group: str, current: str) -> None:
        """CodeDeploy's rule: of the group's other deployment directories, delete the oldest
        (by mtime) until max_revisions remain with the current one — never the last successful
        one, which then survives in addition (max_revisions 1 may keep two)."""
        group_dir = self._root.deployment_dir(group, current).parent
        keep = self._root.last_successful_archive(group)
        others = [d for d in group_dir.iterdir() if d.is_dir() and d.name != current]
        excess = len(others) - (self._config.max_revisions - 1)
        deletable = sorted(
            (d for d in others if keep is None or d != keep.parent),
            key=lambda d: (d.stat().st_mtime_ns, d.name),
        )
        for directory in deletable[: max(excess, 0)]:
            shutil.rmtree(directory, ignore_errors=True)
