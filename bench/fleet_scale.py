"""Benchmark: many agents against one deploy-server — simulated agents (bench.simagents: many
AgentGateway sessions in this process, speaking the real gRPC protocol through the real fleet
and orchestrator, answering every command at once as a no-op hook would).

For each fleet size N it prints how long N agents connecting at the same moment take to be all
online (and how many stream attempts failed on the way), then create-deployment → Succeeded of
a no-op revision (7 events per instance) AllAtOnce to all N, and the server's RSS. Not a test:
it prints figures (with the issue's goals beside them) and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.cluster import create_group, deploy_noop, server, wait_online, yardstick
from bench.simagents import SimulatedAgents

GOALS = {10: 1.0, 100: 2.0, 1000: 5.0}
"""AllAtOnce create → Succeeded, seconds (issue 16)."""
STORM_GOAL_SECONDS = 10.0


def one_size(workdir: Path, agents: int, runs: int, database_url: str) -> None:
    tags = {"bench": "yes"}
    names = [f"sim-{i}" for i in range(agents)]
    with server(workdir, database_url) as running:
        address, admin = running.address, running.admin
        token = admin.join_tokens(address, tags, agents)
        simulated = SimulatedAgents(address, names, tags, admin.ca_file, token)
        simulated.enrol()
        enrolled_rss = running.rss_mb()
        with admin.client(address) as client, simulated:  # all connect at once
            started = time.perf_counter()
            running.wait_connected(agents, 600)
            storm = time.perf_counter() - started
            per_stream_kb = (running.rss_mb() - enrolled_rss) * 1024 / agents
            wait_online(client, agents, 60)
            create_group(client, tags, "CodeDeployDefault.AllAtOnce")
            times = [deploy_noop(client, workdir, run, timeout=900) for run in range(runs)]
        median = statistics.median(times)
        goal = GOALS.get(agents)
        print(
            f"{agents:>6} {storm:>10.2f} {simulated.failed_attempts:>7} "
            f"{len(times):>5} {median:>10.2f} {min(times):>8.2f} {max(times):>8.2f} "
            f"{(f'≤ {goal:g}' if goal else '-'):>6} {per_stream_kb:>10.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary dir")
    args = parser.parse_args()
    print(yardstick())
    print(
        "simulated agents (sessions in this process over the real protocol; no-op hooks in-process)"
    )
    print(
        f"connect: all N at once → all online (goal for 1,000: ≤ {STORM_GOAL_SECONDS:g} s, no "
        "failed attempt); deploy: create-deployment → Succeeded, AllAtOnce, 7 events per instance"
    )
    print(
        f"{'agents':>6} {'connect s':>10} {'failed':>7} {'runs':>5} {'median s':>10} "
        f"{'min s':>8} {'max s':>8} {'goal s':>6} {'KB/stream':>10}"
    )
    for agents in args.agents:
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            one_size(Path(tmp), agents, args.runs, args.database_url)


if __name__ == "__main__":
    main()
