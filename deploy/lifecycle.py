"""CodeDeploy's lifecycle vocabulary, shared by the services and the agent: the in-place event
order and the closed set of reasons an event fails."""

from __future__ import annotations

from enum import StrEnum

IN_PLACE_EVENTS: tuple[str, ...] = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)
"""An in-place deployment without a load balancer, in order (DESIGN §4)."""

STOP_FAILURE_IGNORABLE: frozenset[str] = frozenset(
    {"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"}
)
"""Events whose failure --ignore-application-stop-failures lets the instance continue past."""


def passes(event: str, succeeded: bool, ignore_stop_failures: bool) -> bool:
    """Whether the instance goes on after `event` ended so: the one rule by which the
    orchestrator starts an instance's next event and an agent runs the next one of a chain."""
    return succeeded or (ignore_stop_failures and event in STOP_FAILURE_IGNORABLE)


class ErrorCode(StrEnum):
    """Why an event failed: CodeDeploy's LifecycleErrorCode names, plus the checks the agent
    makes before any script runs. Mirrors deploy.v1.LifecycleErrorCode."""

    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"
    INVALID_BUNDLE = "InvalidBundle"
    INVALID_APPSPEC = "InvalidAppSpec"
    INSTALL_FAILED = "InstallFailed"
    AGENT_ISSUE = "AgentIssue"
    """Set by the fleet: the agent went offline (or was told to stop) while the event was in
    flight."""
    TIMEOUT = "Timeout"
    """Set by the fleet: the agent did not acknowledge the event, or it did not end, in time."""
