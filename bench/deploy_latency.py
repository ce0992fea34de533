"""Benchmark: create-deployment → Succeeded for a no-op revision on 1, 3 and 10 local agents.

Every scriptable hook is `exit 0`, the config is AllAtOnce, the server runs all services in one
process on SQLite. Prints the median and spread of several runs per fleet size. Not a test: it
prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import yaml

from bench.cluster import BIN, create_group, deploy_noop, server, wait_online


def one_fleet(workdir: Path, agents: int, runs: int) -> list[float]:
    processes = []
    with server(workdir) as (address, admin, _), (workdir / "agents.log").open("ab") as logs:
        try:
            token = admin.join_token(address, {"bench": "yes"}, agents)
            for name in (f"bench-{i}" for i in range(agents)):
                config = workdir / f"{name}.yaml"
                config.write_text(
                    yaml.safe_dump(
                        {
                            "server": address,
                            "ca_file": str(admin.ca_file),
                            "join_token": token,
                            "instance_name": name,
                            "root_dir": str(workdir / name / "root"),
                            "install_prefix": str(workdir / name / "prefix"),
                        }
                    )
                )
                processes.append(
                    subprocess.Popen(
                        [
                            str(BIN / "deploy-agent"),
                            "--config",
                            str(config),
                            "--log-level",
                            "WARNING",
                        ],
                        stdout=logs,
                        stderr=logs,
                    )
                )
            with admin.client(address) as client:
                wait_online(client, agents, 60)
                create_group(client, {"bench": "yes"}, "CodeDeployDefault.AllAtOnce")
                return [deploy_noop(client, workdir, run) for run in range(runs)]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print("create-deployment → Succeeded, no-op revision (7 events per instance), AllAtOnce")
    print(
        f"{'agents':>6} {'runs':>5} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'stdev ms':>9}"
    )
    for agents in args.agents:
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            times = [t * 1000 for t in one_fleet(Path(tmp), agents, args.runs)]
        print(
            f"{agents:>6} {len(times):>5} {statistics.median(times):>10.1f} "
            f"{min(times):>8.1f} {max(times):>8.1f} {statistics.stdev(times):>9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
