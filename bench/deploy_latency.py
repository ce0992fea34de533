"""Benchmark: create-deployment → Succeeded for a no-op revision on 1, 3 and 10 local agents.

Every scriptable hook is `exit 0`, the config is AllAtOnce, the server runs all services in one
process on SQLite. Prints the median and spread of several runs per fleet size. Not a test: it
prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.cluster import deploy_noop, real_fleet, yardstick

GOAL_ONE_HOST_MS = 150.0
"""1 host, create → Succeeded, median (issue 16)."""
GOAL_PER_HOST_MS = 50.0
"""OneAtATime over 10 hosts: time beyond the hooks' own, per host (the hooks' time as the
agents measure it: `opendeploy_agent_hook_duration_seconds`)."""


def one_fleet(workdir: Path, agents: int, runs: int, config: str) -> list[tuple[float, float]]:
    """Milliseconds of each run's create-deployment → Succeeded, and of its hooks (summed over
    the agents: their own measure, from starting each script to its exit)."""
    times = []
    with real_fleet(workdir, agents, {"bench": "yes"}, config) as (_, client, started):
        for run in range(runs):
            hooks_before = started.hook_seconds()
            elapsed = deploy_noop(client, workdir, run)
            times.append((elapsed * 1000, (started.hook_seconds() - hooks_before) * 1000))
    return times


def row(label: str, agents: int, runs: list[tuple[float, float]], goal: str) -> None:
    """One line of figures; beyond the hooks (OneAtATime: hosts one after another, so their
    hooks' time adds up) per host, where `goal` applies."""
    times = [elapsed for elapsed, _ in runs]
    median = statistics.median(times)
    beyond = (
        f"{statistics.median((e - h) / agents for e, h in runs):.1f}"
        if label == "OneAtATime"
        else "-"
    )
    print(
        f"{label:>10} {agents:>6} {len(times):>5} {median:>10.1f} {min(times):>8.1f} "
        f"{max(times):>8.1f} {statistics.stdev(times):>9.1f} "
        f"{statistics.median(h for _, h in runs):>9.1f} {beyond:>11} {goal:>9}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(yardstick())
    print("create-deployment → Succeeded, no-op revision (7 events per instance), real agents")
    print(
        f"{'config':>10} {'agents':>6} {'runs':>5} {'median ms':>10} {'min ms':>8} "
        f"{'max ms':>8} {'stdev ms':>9} {'hooks ms':>9} {'beyond/host':>11} {'goal':>9}"
    )
    for agents in args.agents:
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            times = one_fleet(Path(tmp), agents, args.runs, "CodeDeployDefault.AllAtOnce")
        goal = f"≤ {GOAL_ONE_HOST_MS:g}" if agents == 1 else "-"
        row("AllAtOnce", agents, times, goal)
    # One host after another: what each host costs beyond its hooks (the agents measure their
    # hooks' time; a no-op hook still takes a few milliseconds to start and run `sh`).
    agents = max(args.agents)
    with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
        times = one_fleet(Path(tmp), agents, args.runs, "CodeDeployDefault.OneAtATime")
    row("OneAtATime", agents, times, f"≤ {GOAL_PER_HOST_MS:g}/host")


if __name__ == "__main__":
    main()
