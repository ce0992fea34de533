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

from bench.cluster import deploy_noop, real_fleet

GOAL_ONE_HOST_MS = 150.0
"""1 host, create → Succeeded, median (issue 16)."""
GOAL_PER_HOST_MS = 50.0
"""OneAtATime over 10 hosts: time beyond the hooks' own, per host."""


def one_fleet(workdir: Path, agents: int, runs: int, config: str) -> list[float]:
    """Milliseconds of each run's create-deployment → Succeeded."""
    with real_fleet(workdir, agents, {"bench": "yes"}, config) as (_, client):
        return [deploy_noop(client, workdir, run) * 1000 for run in range(runs)]


def row(label: str, agents: int, times: list[float], goal: str, per_host: bool = False) -> None:
    median = statistics.median(times)
    print(
        f"{label:>10} {agents:>6} {len(times):>5} {median:>10.1f} {min(times):>8.1f} "
        f"{max(times):>8.1f} {statistics.stdev(times):>9.1f} "
        f"{(f'{median / agents:.1f}' if per_host else '-'):>9} {goal:>8}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print("create-deployment → Succeeded, no-op revision (7 events per instance), real agents")
    print(
        f"{'config':>10} {'agents':>6} {'runs':>5} {'median ms':>10} {'min ms':>8} "
        f"{'max ms':>8} {'stdev ms':>9} {'ms/host':>9} {'goal':>8}"
    )
    for agents in args.agents:
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            times = one_fleet(Path(tmp), agents, args.runs, "CodeDeployDefault.AllAtOnce")
        goal = f"≤ {GOAL_ONE_HOST_MS:g}" if agents == 1 else "-"
        row("AllAtOnce", agents, times, goal)
    # One host after another: what each host costs beyond its hooks (no-op hooks take a few
    # milliseconds each, counted here as overhead).
    agents = max(args.agents)
    with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
        times = one_fleet(Path(tmp), agents, args.runs, "CodeDeployDefault.OneAtATime")
    row("OneAtATime", agents, times, f"≤ {GOAL_PER_HOST_MS:g}/host", per_host=True)


if __name__ == "__main__":
    main()
