"""The agent's one error type: a failure of a lifecycle event, with a closed error code."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Mirrors deploy.v1.LifecycleErrorCode (CodeDeploy's names plus checks done before scripts)."""

    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"
    INVALID_BUNDLE = "InvalidBundle"
    INVALID_APPSPEC = "InvalidAppSpec"
    INSTALL_FAILED = "InstallFailed"


class EventFailed(Exception):
    """A lifecycle event failed; carries what the server shows in the event's diagnostics."""

    def __init__(
        self, code: ErrorCode, message: str, script_name: str = "", log_tail: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.script_name = script_name
        self.log_tail = log_tail


class ConfigError(Exception):
    """The agent's configuration file is missing, unreadable or invalid."""
