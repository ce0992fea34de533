"""Trigger delivery: POST each queued notification to its webhook, retrying with backoff.

Deliveries come from the outbox the store writes with each state change, so a notification is
never lost to a crash and never delays or fails a deployment; a slow or failing webhook only
delays its own deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import httpx

from services.core.clock import utcnow
from services.core.metrics import TRIGGER_DELIVERIES
from services.core.outbound import OutboundPolicy, OutboundRefused, post_json
from services.core.signal import ChangeSignal
from services.core.urls import redact_url
from services.orchestrator.notifications import retry_at
from services.orchestrator.outbox import DeliveryStore, PendingDelivery

log = logging.getLogger(__name__)

POST_TIMEOUT_SECONDS = 10.0
CONCURRENT_DELIVERIES = 8


async def deliver(url: str, body: str, policy: OutboundPolicy) -> tuple[int, str | None]:
    """POST `body`; (HTTP status, error) where error is None for a 2xx answer. A denied
    address or a redirect is an error like any other (retried, then given up)."""
    try:
        status = await post_json(
            url, body.encode(), policy, POST_TIMEOUT_SECONDS, "opendeploy-trigger/1"
        )
    except OutboundRefused as error:
        return 0, str(error)
    except httpx.HTTPError as error:
        return 0, f"{type(error).__name__}: could not reach {redact_url(url)}"
    return status, None if 200 <= status < 300 else f"HTTP {status}"


class TriggerDispatcher:
    def __init__(
        self, deliveries: DeliveryStore, outbox: ChangeSignal, policy: OutboundPolicy
    ) -> None:
        self._deliveries = deliveries
        self._outbox = outbox
        self._policy = policy
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
            status, error = await deliver(delivery.url, delivery.payload, self._policy)
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
                            "url": redact_url(delivery.url),
                            "error": error,
                            "status": outcome,
                        }
                    },
                )
        finally:
            self._outbox.notify()
