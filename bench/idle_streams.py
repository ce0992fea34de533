"""Benchmark: what idle agents cost one deploy-server — N simulated agents (bench.simagents,
enrolled, each with its own proved stream, heartbeating at the interval the server's welcome
names, as a real agent does) holding their streams open with nothing to deploy.

Prints the server's RSS per stream (its growth from N enrolled instances to N connected ones,
divided by N) and the CPU it spends on them, as a share of one core over a window. Not a test:
it prints figures (with the issue's goals beside them) and asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.cluster import server
from bench.simagents import SimulatedAgents

RSS_GOAL_KB = 50.0
CPU_GOAL_PERCENT = 25.0


def measure(workdir: Path, agents: int, window: float) -> None:
    tags = {"bench": "idle"}
    with server(workdir) as running:
        token = running.admin.join_tokens(running.address, tags, agents)
        names = [f"idle-{i}" for i in range(agents)]
        simulated = SimulatedAgents(running.address, names, tags, running.admin.ca_file, token)
        started = time.perf_counter()
        simulated.enrol()
        enrolled = time.perf_counter() - started
        enrolled_rss = running.rss_mb()
        with simulated:
            started = time.perf_counter()
            running.wait_connected(agents, 1800)
            connected = time.perf_counter() - started
            # Let the storm's work finish and the heartbeats spread before measuring.
            time.sleep(window / 3)
            per_stream_kb = (running.rss_mb() - enrolled_rss) * 1024 / agents
            cpu, clock = running.cpu_seconds(), time.perf_counter()
            time.sleep(window)
            share = (running.cpu_seconds() - cpu) / (time.perf_counter() - clock) * 100
        print(
            f"{agents:>7} {enrolled:>10.1f} {connected:>10.1f} {simulated.failed_attempts:>7} "
            f"{per_stream_kb:>10.1f} {f'≤ {RSS_GOAL_KB:g}':>6} {share:>8.1f} "
            f"{f'≤ {CPU_GOAL_PERCENT:g}':>6}",
            flush=True,
        )
        for failure, count in simulated.failures.most_common(5):
            print(f"        {count} x {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[10000])
    parser.add_argument("--window", type=float, default=30.0, help="seconds of CPU measured")
    args = parser.parse_args()
    print("idle streams: simulated agents, each heartbeating as the server says (5 s, or longer)")
    print(
        f"{'agents':>7} {'enrol s':>10} {'connect s':>10} {'failed':>7} {'KB/stream':>10} "
        f"{'goal':>6} {'CPU %':>8} {'goal':>6}"
    )
    for agents in args.agents:
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            measure(Path(tmp), agents, args.window)


if __name__ == "__main__":
    main()
