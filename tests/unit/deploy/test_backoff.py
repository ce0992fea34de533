"""The one backoff: exponential steps, capped, jittered within each step, reset by success."""

from __future__ import annotations

import random

from deploy.backoff import Backoff


def test_delays_grow_stay_within_their_step_and_are_capped() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, step in zip(delays, steps, strict=True):
        assert delay is not None
        assert step / 2 <= delay <= step


def test_jitter_spreads_many_clients_over_the_step() -> None:
    firsts = {Backoff(initial=1.0, rng=random.Random(seed)).next_delay() for seed in range(50)}
    assert len(firsts) == 50
    assert min(d for d in firsts if d is not None) < 0.6
    assert max(d for d in firsts if d is not None) > 0.9


def test_attempts_run_out_and_success_resets() -> None:
    backoff = Backoff(initial=0.1, attempts=2)
    assert backoff.next_delay() is not None
    assert backoff.next_delay() is not None
    assert backoff.next_delay() is None
    backoff.reset()
    first = backoff.next_delay()
    assert first is not None and first <= 0.1
