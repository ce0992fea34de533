"""One backoff for every retry and reconnect loop (agents, the orchestrator's streams and
calls): exponential, capped, with jitter, so that a restarted server is not met by every agent
and every loop at the same instant."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.1
    """Seconds before the first retry (at most; jitter makes it up to half shorter)."""
    maximum: float = 5.0
    """No wait is longer than this many seconds."""
    factor: float = 2.0
    attempts: int | None = None
    """Retries before giving up (next_delay returns None); None: retry forever."""
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None once the attempts are used up.
        "Equal jitter": between half the exponential step and all of it."""
        if self.attempts is not None and self._attempt >= self.attempts:
            return None
        step = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        """After a success: the next failure starts from `initial` again."""
        self._attempt = 0


RECONNECT_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", int(Backoff.maximum * 1000)),
]
"""gRPC channels wait up to two minutes between connection attempts by default, failing every
call meanwhile: a peer or fleet that restarts would stay unreachable long after it is back.
Channels of services and agents reconnect within this backoff's maximum instead."""
