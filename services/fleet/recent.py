"""The command updates this process stored last, kept in memory: a watcher that has read up to
them (the orchestrator's stream of ends, almost always) takes the next ones from here instead
of a query per wake-up. Pure: the command bus feeds it after each write."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable

from services.fleet.domain import CommandUpdate, UpdateKind

RECENT_UPDATES = 16_384
"""Updates kept at most (a 1,000-host deployment stores 14,000); a watcher further behind
reads the database."""


class RecentUpdates:
    """Every update stored after `floor`, in sequence order, once the floor is known.

    The fleet's command bus is the only writer of updates, through one writer at a time, so
    the updates it adds here come in the order they were committed. It is created before the
    floor is read (the last sequence stored): a write that ends after creation is added here,
    one that ended before is at or below the floor. Until the floor is known, and for cursors
    below it, `after` answers None: read the database."""

    def __init__(self, capacity: int = RECENT_UPDATES) -> None:
        self._capacity = capacity
        self._updates: list[CommandUpdate] = []
        self._floor: int | None = None

    def cover_from(self, floor: int) -> None:
        """Updates after `floor` are all here from now on (`floor`: the last sequence stored
        when this began)."""
        self._floor = floor

    def add(self, updates: Iterable[CommandUpdate]) -> None:
        """Updates just committed (by the one writer, after those added before)."""
        self._updates.extend(sorted(updates, key=_sequence))
        if len(self._updates) > self._capacity:
            dropped = len(self._updates) - self._capacity // 2
            if self._floor is not None:
                self._floor = max(self._floor, self._updates[dropped - 1].sequence)
            del self._updates[:dropped]

    def after(self, sequence: int, finished_only: bool, limit: int) -> list[CommandUpdate] | None:
        """The next updates after `sequence` (at most `limit`; `finished_only`: ends only);
        None when some may not be here (read the database)."""
        if self._floor is None or sequence < self._floor:
            return None
        start = bisect.bisect_right(self._updates, sequence, key=_sequence)
        found: list[CommandUpdate] = []
        for update in itertools.islice(self._updates, start, None):
            if len(found) == limit:
                break
            if not finished_only or update.kind is UpdateKind.FINISHED:
                found.append(update)
        return found


def _sequence(update: CommandUpdate) -> int:
    return update.sequence
