"""Why a lifecycle event ended as it did: a closed error code, a message and an output tail."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.lifecycle import ErrorCode


@dataclass(frozen=True)
class Diagnostics:
    """What the agent reported about one event (empty for an event still running)."""

    error_code: ErrorCode | None = None
    script_name: str = ""
    message: str = ""
    log_tail: str = ""
    """At most the last 2,048 characters of the scripts' output."""


__all__ = ["Diagnostics", "ErrorCode"]
