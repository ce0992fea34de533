"""Which lifecycle events an instance runs, in order, as data (DESIGN §4)."""

from __future__ import annotations

IN_PLACE_EVENTS: tuple[str, ...] = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)
"""In-place deployment without a load balancer."""

STOP_FAILURE_IGNORABLE: frozenset[str] = frozenset(
    {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
)
"""Events whose failure --ignore-application-stop-failures lets the instance continue past."""
