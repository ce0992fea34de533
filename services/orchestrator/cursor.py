"""Where the fleet's update stream resumes after a restart: past every result already recorded,
never past one still being recorded.

Results go to their deployments' runners, which record them in parallel and in batches; each
runner's transaction stores the cursor this keeper allows it, so the stored cursor only passes a
result once the result itself is committed (a result seen twice is ignored; one skipped would be
lost).
"""

from __future__ import annotations

from collections.abc import Collection


class FleetCursor:
    def __init__(self) -> None:
        self._outstanding: set[int] = set()
        """Sequences of finished results handed to a runner and not yet committed."""
        self._seen = 0
        """The highest sequence received."""

    def received(self, sequence: int, to_record: bool) -> None:
        """A result arrived; `to_record`: a runner will record it (else nothing needs to)."""
        self._seen = max(self._seen, sequence)
        if to_record:
            self._outstanding.add(sequence)

    def allowed_with(self, sequences: Collection[int]) -> int:
        """The cursor a transaction recording `sequences` may store (0: leave it)."""
        others = self._outstanding.difference(sequences)
        return min(others) - 1 if others else self._seen

    def recorded(self, sequences: Collection[int]) -> None:
        """`sequences` are committed (or need no recording after all)."""
        self._outstanding.difference_update(sequences)
