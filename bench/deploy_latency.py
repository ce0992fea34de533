"""Benchmark: create-deployment → Succeeded for a no-op revision on 1, 3 and 10 local agents.

Every scriptable hook is `exit 0`, the config is AllAtOnce, the server runs all services in one
process on SQLite. Prints the median and spread of several runs per fleet size. Not a test: it
prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.access import Admin, serving
from deploy.bundle import make_zip
from deploy.client import TERMINAL, DeployClient
from deploy.v1 import common_pb2, fleet_pb2, orchestrator_pb2, registry_pb2

BIN = Path(sys.executable).parent
HOOKS = (
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def noop_bundle(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    lines = ["version: 0.0", "os: linux", "hooks:"]
    for hook in HOOKS:
        script = root / "scripts" / f"{hook}.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def one_fleet(workdir: Path, agents: int, runs: int) -> list[float]:
    address = f"127.0.0.1:{free_port()}"
    admin = Admin(workdir / "data" / "pki", workdir / "data")
    processes = []
    logs = (workdir / "logs.txt").open("ab")
    try:
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "deploy-server"),
                    "--listen",
                    address,
                    "--data-dir",
                    str(workdir / "data"),
                    "--metrics-listen",
                    f"127.0.0.1:{free_port()}",
                    "--log-level",
                    "WARNING",
                ],
                stdout=logs,
                stderr=logs,
            )
        )
        wait(lambda: serving(address, admin.ca_file), 30, "deploy-server")
        admin.wait_for_key(wait)
        token = admin.join_token(address, {"bench": "yes"}, agents)
        names = [f"bench-{i}" for i in range(agents)]
        for name in names:
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
                    [str(BIN / "deploy-agent"), "--config", str(config), "--log-level", "WARNING"],
                    stdout=logs,
                    stderr=logs,
                )
            )
        with admin.client(address) as client:

            def online() -> bool:
                listed = client.instances()
                return sum(i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE for i in listed) == agents

            wait(online, 60, f"{agents} agents online")
            return [deploy_once(client, workdir, run) for run in range(runs)]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(10)
        logs.close()


def deploy_once(client: DeployClient, workdir: Path, run: int) -> float:
    if run == 0:
        client.call(
            client.registry.CreateApplication,
            registry_pb2.CreateApplicationRequest(application_name="bench"),
        )
        client.call(
            client.orchestrator.CreateDeploymentGroup,
            orchestrator_pb2.CreateDeploymentGroupRequest(
                application_name="bench",
                deployment_group_name="all",
                deployment_config_name="CodeDeployDefault.AllAtOnce",
                on_premises_instance_tag_filters=[
                    common_pb2.TagFilter(
                        key="bench", value="yes", type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE
                    )
                ],
            ),
        )
    bundle = workdir / "bundle.zip"
    digest = make_zip(noop_bundle(workdir / f"src-{run}"), bundle)
    uploaded = client.upload_bundle(bundle, digest)
    revision = common_pb2.RevisionLocation(
        revision_type=common_pb2.REVISION_TYPE_REGISTRY, registry_location=uploaded.location
    )
    started = time.perf_counter()
    created = client.call(
        client.orchestrator.CreateDeployment,
        orchestrator_pb2.CreateDeploymentRequest(
            application_name="bench", deployment_group_name="all", revision=revision
        ),
    )
    final = None
    for update in client.watch_deployment(created.deployment_id, timeout=120):
        if update.deployment_info.status in TERMINAL:
            final = update.deployment_info.status
    elapsed = time.perf_counter() - started
    if final != orchestrator_pb2.DEPLOYMENT_STATUS_SUCCEEDED:
        raise SystemExit(f"deployment {created.deployment_id} did not succeed")
    return elapsed


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
