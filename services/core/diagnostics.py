"""Why a lifecycle event ended as it did: a closed error code, a message and an output tail."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """CodeDeploy's LifecycleErrorCode names, plus the agent's checks that run before any script."""

    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"
    INVALID_BUNDLE = "InvalidBundle"
    INVALID_APPSPEC = "InvalidAppSpec"
    INSTALL_FAILED = "InstallFailed"


@dataclass(frozen=True)
class Diagnostics:
    """What the agent reported about one event (empty for an event still running)."""

    error_code: ErrorCode | None = None
    script_name: str = ""
    message: str = ""
    log_tail: str = ""
    """At most the last 2,048 characters of the scripts' output."""
