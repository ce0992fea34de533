"""Which lifecycle events an instance runs, in order, as data (DESIGN §4)."""

from __future__ import annotations

from deploy.lifecycle import IN_PLACE_EVENTS

STOP_FAILURE_IGNORABLE: frozenset[str] = frozenset(
    {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
)
"""Events whose failure --ignore-application-stop-failures lets the instance continue past."""

__all__ = ["IN_PLACE_EVENTS", "STOP_FAILURE_IGNORABLE"]
