"""The agent's one error type: a failure of a lifecycle event, with a closed error code."""

from __future__ import annotations

from deploy.lifecycle import ErrorCode


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


__all__ = ["ConfigError", "ErrorCode", "EventFailed"]
