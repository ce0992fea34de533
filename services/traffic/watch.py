"""HAProxy keeps the servers the traffic service adds at runtime only in memory: a restarted
HAProxy serves nobody until they are put back. The watch notices a restart (a new process id
behind the admin socket) and has the router put back what its records say."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from services.traffic.haproxy import process_id

log = logging.getLogger(__name__)

WATCH_SECONDS = 2.0
"""How often each HAProxy is asked for its process id (HAProxy cannot tell it restarted)."""


def restarted(previous: int | None, current: int | None) -> bool:
    """A different process answers than the one last seen (after any gap without one)."""
    return current is not None and previous is not None and current != previous


class HAProxyWatch:
    def __init__(self, sockets: Sequence[str], restore: Callable[[], Awaitable[None]]) -> None:
        self._sockets = list(sockets)
        self._restore = restore
        self._seen: dict[str, int | None] = {}
        """The last process id that answered on each socket."""

    async def run(self) -> None:
        if not self._sockets:
            return
        while True:
            for socket in self._sockets:
                current = await process_id(socket)
                if restarted(self._seen.get(socket), current):
                    log.warning(
                        "HAProxy restarted; putting its servers back",
                        extra={"fields": {"admin_socket": socket, "pid": current}},
                    )
                    try:
                        await self._restore()
                    except Exception:  # the loop must outlive one failed pass
                        log.exception("putting HAProxy's servers back failed")
                if current is not None:
                    self._seen[socket] = current
            await asyncio.sleep(WATCH_SECONDS)
