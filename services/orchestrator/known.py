"""A deployment's targets as its runner's last step left them, so that the next step reads again
only the targets that changed since.

Every step decides on all the deployment's targets. At a thousand hosts, reading them all
(and their 7,000 events) each time took most of every step, while a step changes a few dozen.
A runner is the only writer of its deployment (`runner.py`), so what it does not write stays
as it read it. Anything it writes beyond results and the changes a decision names is not
tracked, and the next step reads all the targets again: a stop skips every target not
started, a finish records every target's revision, and a replacement fleet adds targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.orchestrator.decision import Decision
from services.orchestrator.domain import Target
from services.orchestrator.results import EventEnded


class KnownTargets:
    """Pure bookkeeping: which targets a step must read, and the targets it decides on."""

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}
        """In rollout order."""
        self._stale: frozenset[str] | None = None
        """Changed since they were read (None: all are to be read)."""

    def to_read(self, happened: Iterable[object]) -> frozenset[str] | None:
        """The instances whose targets a step recording `happened` reads (None: all)."""
        if self._stale is None:
            return None
        results: set[str] = set()
        for happening in happened:
            if isinstance(happening, EventEnded):
                results.add(happening.ref.instance_name)
            elif happening is not None:
                return None  # a stop, a replacement fleet…: not tracked
        return self._stale | results

    def merged(self, read: Sequence[Target], wanted: frozenset[str] | None) -> tuple[Target, ...]:
        """The targets to decide on: those just read (`wanted` of them; None: all) in place
        of what was known of them."""
        if wanted is None:
            return tuple(read)
        fresh = {t.instance_name: t for t in read}
        if not fresh.keys() <= self._targets.keys():
            raise AssertionError("a target appeared without a full read")
        return tuple(fresh.get(name, target) for name, target in self._targets.items())

    def stepped(self, targets: Sequence[Target], decision: Decision) -> None:
        """The step that decided on `targets` committed: what its decision changed is read
        again next time (everything, if it changed more than the targets it names)."""
        if decision.skip_unstarted or decision.finish is not None:
            self.forget()
            return
        self._targets = {t.instance_name: t for t in targets}
        self._stale = frozenset(
            {change.ref.instance_name for change in decision.events}
            | {change.instance_name for change in decision.targets}
        )

    def forget(self) -> None:
        """The next step reads every target (a failed step, or changes not tracked)."""
        self._targets = {}
        self._stale = None
