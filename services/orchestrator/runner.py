"""One active deployment, carried on: each thing that happens to it is recorded, decided on
(`next_step.decide`) and applied in one transaction (`DeploymentStore.step`); then the
decision's acts are performed, and the runner decides again at the decision's `wake_at`.

A runner is the only writer of its deployment in this process, so two results never race; it
keeps nothing a restart needs — a new runner loads the deployment and carries it on (Nomad's
deployment watcher has the same shape).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from deploy.backoff import Backoff
from services.core.clock import utcnow
from services.core.errors import DeployError, NotFound
from services.orchestrator.cursor import FleetCursor
from services.orchestrator.happenings import Continued, Happening, Step, StopRequested
from services.orchestrator.known import KnownTargets
from services.orchestrator.next_step import decide
from services.orchestrator.results import EventEnded
from services.orchestrator.states import ACTIVE_DEPLOYMENT
from services.orchestrator.store import DeploymentStore

log = logging.getLogger(__name__)


class Performer(Protocol):
    """Does what a committed decision asks outside the database."""

    def perform(self, runner: DeploymentRunner, step: Step) -> None: ...


Item = tuple[Happening, "asyncio.Future[Step] | None"]

MAX_BATCH = 500
"""Results recorded in one transaction at most (the rest wait for the next)."""


class DeploymentRunner:
    def __init__(
        self,
        deployment_id: str,
        store: DeploymentStore,
        performer: Performer,
        cursor: FleetCursor,
        on_end: Callable[[DeploymentRunner], None],
    ) -> None:
        self.deployment_id = deployment_id
        self._store = store
        self._performer = performer
        self._cursor = cursor
        self._on_end = on_end
        self._inbox: deque[Item] = deque()
        self._known = KnownTargets()
        """The targets as the last step left them: a step reads only those changed since."""
        self._arrived = asyncio.Event()
        self.acting: set[str] = set()
        """Acts running now (provision, retire): not started twice at once."""
        self.held: set[str] = set()
        """Command ids sent to agents after another event of their chain: not sent again
        when their event starts here."""
        self.awaiting_fleet = False
        """The last decision looks for provisioned instances: decide again when the fleet
        changes."""
        self._inbox.append((None, None))  # a new runner first decides on the stored state

    async def submit(self, happened: Happening) -> Step:
        """Record `happened` and decide; returns the committed step (or raises its error)."""
        future: asyncio.Future[Step] = asyncio.get_running_loop().create_future()
        self._put(happened, future)
        return await future

    def tell(self, happened: Happening = None) -> None:
        """Record `happened` (None: only decide again) without waiting for it."""
        self._put(happened, None)

    def _put(self, happened: Happening, reply: asyncio.Future[Step] | None) -> None:
        self._inbox.append((happened, reply))
        self._arrived.set()

    async def run(self) -> None:
        """Until the deployment has ended and nothing more is queued."""
        wake_at: datetime | None = None
        backoff = Backoff()
        while True:
            batch = await self._next(wake_at)
            happened = [h for h, _ in batch]
            sequences = [h.sequence for h in happened if isinstance(h, EventEnded) and h.sequence]
            try:
                cursor = self._cursor.allowed_with(sequences) if sequences else 0
                step = await self._store.step(
                    self.deployment_id, happened, decide, cursor, self._known
                )
            except DeployError as error:  # no such deployment; a stop or continue refused
                self._cursor.recorded(sequences)
                if not _answer(batch, error):
                    log.warning(
                        "could not record",
                        extra={
                            "fields": {"deployment_id": self.deployment_id, "error": str(error)}
                        },
                    )
                if isinstance(error, NotFound) and self._ended():
                    return
                continue
            except Exception as error:  # the database is away: try again later
                log.exception(
                    "could not record or decide; trying again",
                    extra={"fields": {"deployment_id": self.deployment_id}},
                )
                self._inbox.extendleft(reversed([(h, r) for h, r in batch if r is None]))
                _answer(batch, error)  # who waits gets the error and may ask again
                await asyncio.sleep(backoff.next_delay() or backoff.maximum)
                continue
            self._cursor.recorded(sequences)
            backoff.reset()
            _answer(batch, step)
            if not step.recorded:
                continue
            try:
                self._performer.perform(self, step)
            except Exception:  # a bug must not end the runner: later calls would wait forever
                log.exception(
                    "could not act on a decision",
                    extra={"fields": {"deployment_id": self.deployment_id}},
                )
            wake_at = step.decision.wake_at
            active = step.decision.finish is None and (
                step.deployment is not None and step.deployment.status in ACTIVE_DEPLOYMENT
            )
            if not active and self._ended():
                return

    def _ended(self) -> bool:
        """Leave when nothing is queued (no await between the check and leaving, so nothing
        can be queued to a runner that has left)."""
        if self._inbox:
            return False
        self._on_end(self)
        return True

    async def _next(self, wake_at: datetime | None) -> list[Item]:
        """What happened since the last step, batched: a stop or a continue alone (either may
        be refused), anything else together with what follows it."""
        while not self._inbox:
            self._arrived.clear()
            timeout = None if wake_at is None else max((wake_at - utcnow()).total_seconds(), 0.0)
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return [(None, None)]
        batch = [self._inbox.popleft()]
        while (
            self._inbox
            and len(batch) < MAX_BATCH
            and not _alone(batch[0][0])
            and not _alone(self._inbox[0][0])
        ):
            batch.append(self._inbox.popleft())
        return batch


def _alone(happened: Happening) -> bool:
    return isinstance(happened, StopRequested | Continued)


def _answer(batch: list[Item], result: Step | BaseException) -> bool:
    """Tell whoever waits for an item of `batch`; False when nobody does."""
    waiting = [reply for _, reply in batch if reply is not None and not reply.done()]
    for reply in waiting:
        if isinstance(result, BaseException):
            reply.set_exception(result)
        else:
            reply.set_result(result)
    return bool(waiting)
