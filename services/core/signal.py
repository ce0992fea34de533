"""A wake-up signal for watchers of changing state (push, not poll)."""

from __future__ import annotations

import asyncio


class ChangeSignal:
    """Wakes every waiter when something changed; waiters then re-read what they watch."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False
        """Set at shutdown: open watch streams end instead of holding the server's grace."""

    def current(self) -> asyncio.Event:
        """The event to wait on; take it *before* reading state, so no change is missed."""
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def close(self) -> None:
        """Wake every waiter for the last time; they see `closed` and end."""
        self.closed = True
        self.notify()
