"""Trigger delivery: POST each queued notification to its webhook, retrying with backoff.

Deliveries come from the outbox the store writes with each state change, so a notification is
never lost to a crash and never delays or fails a deployment; a slow or failing webhook only
delays its own deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
import urllib.request
from datetime import timedelta

from services.core.clock import utcnow
from services.core.metrics import TRIGGER_DELIVERIES
from services.core.signal import ChangeSignal
from services.orchestrator.notifications import retry_at
from services.orchestrator.outbox import DeliveryStore, PendingDelivery

log = logging.getLogger(__name__)

POST_TIMEOUT_SECONDS = 10.0
CONCURRENT_DELIVERIES = 8


def post_json(url: str, body: str) -> tuple[int, str]:
    """POST `body`; (HTTP status, error) where error is empty for a 2xx answer. Blocking: run
    it in a thread."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "opendeploy-trigger/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return 0, str(reason)


class TriggerDispatcher:
    def __init__(self, deliveries: DeliveryStore, outbox: ChangeSignal) -> None:
        self._deliveries = deliveries
        self._outbox = outbox
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        for task in [*self._sends, *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            wake = self._outbox.current()
            try:
                timeout = await self._send_due()
            except Exception:  # the database may be briefly unavailable; try again soon
                log.exception("trigger outbox unreadable")
                timeout = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    async def _send_due(self) -> float | None:
        """Start sending what is due, at most CONCURRENT_DELIVERIES at a time. Returns the
        seconds until the next attempt is due; None when only a new delivery or the end of a
        send (both wake the loop) can bring more work."""
        free = CONCURRENT_DELIVERIES - len(self._sends)
        if not free:
            return None
        for delivery in await self._deliveries.due(utcnow(), free):
            now = utcnow()
            lease = now + timedelta(seconds=POST_TIMEOUT_SECONDS * 2)
            if await self._deliveries.claim(delivery, now, lease):
                task = asyncio.ensure_future(self._send(delivery))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
        next_due = await self._deliveries.next_due()
        if next_due is None:
            return None
        return max((next_due - utcnow()).total_seconds(), 0.05)

    async def _send(self, delivery: PendingDelivery) -> None:
        try:
            status, error = await asyncio.to_thread(post_json, delivery.url, delivery.payload)
            now = utcnow()
            outcome = await self._deliveries.record(
                delivery.id, now, status, error, retry_at(delivery.attempts + 1, now)
            )
            TRIGGER_DELIVERIES.labels(outcome).inc()
            if error:
                log.warning(
                    "trigger delivery failed",
                    extra={
                        "fields": {
                            "delivery": delivery.id,
                            "url": delivery.url,
                            "error": error,
                            "status": outcome,
                        }
                    },
                )
        finally:
            self._outbox.notify()
