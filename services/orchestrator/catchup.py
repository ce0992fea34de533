"""Catch-up: instances that join a group get its target revision, as CodeDeploy does for
instances Auto Scaling launches.

Level-triggered: whenever the fleet reports a change (or after a group's deployment succeeds,
or at start), every group concerned is compared with what its instances run, and an
outdated-instances-only deployment of the group's last successful revision is created for the
instances that missed it (new to the group, or not in it then). An instance on which it, or a
later deployment, failed is not retried automatically (no loops, no silent reverts);
`create-deployment --update-outdated-instances-only` retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Protocol

from deploy.backoff import Backoff
from services.core.errors import DeployError, FailedPrecondition
from services.core.revision import RevisionLocation
from services.core.signal import ChangeSignal
from services.core.tags import Tag
from services.orchestrator.domain import Creator, DeploymentRequest, InstanceRevision
from services.orchestrator.group_store import GroupStore
from services.orchestrator.groups import DeploymentGroup
from services.orchestrator.peers import FleetClient
from services.orchestrator.store import DeploymentStore

log = logging.getLogger(__name__)

TAG_CALLS_AT_MOST = 10
"""Changed instances whose tags are asked for one by one; more are read in one listing."""


def outdated_instances(
    instances: Collection[str],
    revisions: Mapping[str, InstanceRevision],
    revision: RevisionLocation,
    missed_since: datetime | None = None,
) -> list[str]:
    """Instances not running `revision`, in order. With `missed_since` (catch-up: when the
    group's last successful deployment was created), only those no deployment has touched
    since: new to the group, or not in it when it was last deployed. An instance on which that
    or a later deployment failed is left for people to decide about."""
    wanted = revision.identity()
    outdated = []
    for name in instances:
        known = revisions.get(name)
        if known is None:
            outdated.append(name)
        elif known.current is not None and known.current.identity() == wanted:
            continue
        elif missed_since is None or known.touched_at < missed_since:
            outdated.append(name)
    return outdated


class DeploymentCreator(Protocol):
    async def instances(self, group: DeploymentGroup) -> list[str]: ...

    async def create_deployment(self, request: DeploymentRequest) -> str: ...


class CatchUp:
    def __init__(
        self,
        groups: GroupStore,
        deployments: DeploymentStore,
        fleet: FleetClient,
        creator: DeploymentCreator,
        on_fleet_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_fleet_change = on_fleet_change
        """Told of every fleet change (a blue/green deployment may wait for new instances)."""
        self._groups = groups
        self._deployments = deployments
        self._fleet = fleet
        self._creator = creator
        self._dirty: set[str] = set()
        """Ids of the groups to look at again."""
        self._changed: set[str] = set()
        """Instances that changed: the groups they now match are looked at again."""
        self._all = True
        """Look at every group (at start, and after any fleet change)."""
        self._signal = ChangeSignal()
        self._tasks: list[asyncio.Task[None]] = []

    def request(self, group_id: str | None = None) -> None:
        """Look at one group again, or at every group when none is named."""
        if group_id is not None:
            self._dirty.add(group_id)
        else:
            self._all = True
        self._signal.notify()

    def instance_changed(self, name: str) -> None:
        """Look again at the groups `name` belongs to now."""
        self._changed.add(name)
        self._signal.notify()

    async def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._work()),
            asyncio.ensure_future(self._follow_fleet()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow_fleet(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for name in self._fleet.instance_changes():
                    backoff.reset()
                    self._on_fleet_change()
                    if name is None:
                        self.request()  # resync: changes may have been missed
                    else:
                        self.instance_changed(name)
            except DeployError as error:
                delay = backoff.next_delay() or backoff.maximum
                log.warning(
                    "fleet instance changes lost; reconnecting",
                    extra={"fields": {"error": str(error), "retry_in_seconds": delay}},
                )
                await asyncio.sleep(delay)

    async def _work(self) -> None:
        while True:
            wake = self._signal.current()
            everything, wanted, changed = self._all, self._dirty, self._changed
            self._all, self._dirty, self._changed = False, set(), set()
            if everything or wanted or changed:
                try:
                    tags = await self._tags_of(changed)
                    for group in await self._groups.all():
                        if (
                            everything
                            or group.id in wanted
                            or any(t is not None and group.matches(t) for t in tags)
                        ):
                            await self._reconcile(group)
                except Exception:  # e.g. the database is briefly unreachable: look again soon
                    log.exception("catch-up pass failed; retrying")
                    await asyncio.sleep(Backoff().maximum)
                    self.request()
                    continue
            await wake.wait()

    async def _tags_of(self, names: Collection[str]) -> list[list[Tag] | None]:
        """The changed instances' tags (None: no longer registered) — one listing of the fleet
        for a burst of changes (a fleet restart is every agent reconnecting), not a call each."""
        if len(names) > TAG_CALLS_AT_MOST:
            registered = await self._fleet.registered_instances()
            return [registered.get(name) for name in names]
        return [await self._fleet.instance_tags(name) for name in names]

    async def _reconcile(self, group: DeploymentGroup) -> None:
        try:
            if await self._deployments.active_ids(group.id):
                return  # looked at again when it succeeds
            good = await self._deployments.last_successful(group.id)
            if good is None:
                return
            instances = await self._creator.instances(group)
            revisions = await self._deployments.instance_revisions(group.id)
            outdated = outdated_instances(instances, revisions, good.revision, good.created_at)
            if not outdated:
                return
            deployment_id = await self._creator.create_deployment(
                DeploymentRequest(
                    application_name=group.application_name,
                    group_name=group.name,
                    revision=good.revision,
                    config_name=group.config_name,
                    description=(f"Catch-up of {', '.join(outdated)} to the revision of {good.id}")[
                        :256
                    ],
                    file_exists_behavior=good.file_exists_behavior,
                    ignore_application_stop_failures=good.ignore_application_stop_failures,
                    update_outdated_instances_only=True,
                    creator=Creator.AUTO_UPDATE,
                    catch_up_since=good.created_at,
                )
            )
            log.info(
                "catch-up deployment created",
                extra={
                    "fields": {
                        "deployment_id": deployment_id,
                        "group": group.name,
                        "instances": outdated,
                    }
                },
            )
        except FailedPrecondition:
            return  # another deployment started meanwhile; its success brings us back
        except DeployError as error:
            log.warning(
                "catch-up failed",
                extra={"fields": {"group": group.name, "error": str(error)}},
            )
