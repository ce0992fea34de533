"""What the benchmarks share: a deploy-server of their own (all services in one process, SQLite
unless a database URL is given), a no-op revision, and timing one deployment of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.access import Admin, serving
from deploy.bundle import make_zip
from deploy.client import TERMINAL, DeployClient
from deploy.errors import ApiError
from deploy.lifecycle import SCRIPTED_EVENTS
from deploy.v1 import common_pb2, fleet_pb2, orchestrator_pb2, registry_pb2

BIN = Path(sys.executable).parent
HOOKS = SCRIPTED_EVENTS


LOG_LEVEL = os.environ.get("OPENDEPLOY_BENCH_LOG_LEVEL", "WARNING")
"""Of the server and the agents (workdir's server.log, agents.log): INFO to see each step."""


def yardstick() -> str:
    """How fast this machine runs a fixed piece of pure-Python work now (best of three), to
    print beside figures: the CI kind's speed changes by the hour (1.6 times within one night),
    and figures of different hours compare only with it."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(YARDSTICK_LOOPS):
            total += number * number % 7
        best = min(best, time.perf_counter() - started)
    return f"machine yardstick: {best:.3f} s for {YARDSTICK_LOOPS:,} loops (lower is faster)"


YARDSTICK_LOOPS = 5_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


@dataclass(frozen=True)
class Server:
    """A deploy-server the benchmark started."""

    address: str
    admin: Admin
    pid: int
    metrics_url: str

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User and system CPU the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metric(self, sample: str) -> float:
        """The value of one sample (name and labels, as exposed) at the metrics endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(sample + " "):
                    return float(line.split()[-1])
        return 0.0

    def wait_connected(self, count: int, timeout: float) -> None:
        """Until `count` agents have a stream open (read from the metrics: cheaper for the
        server than listing thousands of instances, but a scrape still lists every instance's
        connected gauge — a tenth of a second apart, not to load the server it measures)."""
        wait(
            lambda: self.metric("opendeploy_agents_connected") >= count,
            timeout,
            f"{count} agents connected",
            every=0.1,
        )


@contextmanager
def server(workdir: Path, database_url: str = "") -> Iterator[Server]:
    """A running deploy-server of the benchmark's own, all services in one process."""
    address = f"127.0.0.1:{free_port()}"
    metrics = f"127.0.0.1:{free_port()}"
    admin = Admin(workdir / "data" / "pki", workdir / "data")
    command = [
        str(BIN / "deploy-server"),
        "--listen",
        address,
        "--data-dir",
        str(workdir / "data"),
        "--metrics-listen",
        metrics,
        "--log-level",
        LOG_LEVEL,
    ]
    if database_url:
        command += ["--database-url", database_url]
    with (workdir / "server.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            wait(lambda: serving(address, admin.ca_file), 30, "deploy-server")
            admin.wait_for_key(wait)
            yield Server(address, admin, process.pid, f"http://{metrics}/metrics")
        finally:
            process.terminate()
            process.wait(30)


@dataclass(frozen=True)
class RealAgents:
    """deploy-agent processes the benchmark started."""

    metrics_urls: list[str]

    def hook_seconds(self) -> float:
        """Seconds all their hooks have run so far (each agent's own measure: from starting a
        script to its exit)."""
        total = 0.0
        for url in self.metrics_urls:
            with urllib.request.urlopen(url, timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("opendeploy_agent_hook_duration_seconds_sum"):
                        total += float(line.split()[-1])
        return total


@contextmanager
def real_agents(
    running: Server, workdir: Path, count: int, tags: dict[str, str]
) -> Iterator[RealAgents]:
    """`count` deploy-agent processes enrolled with `tags`, each with its own root under
    `workdir` and its metrics endpoint, until the block ends."""
    processes = []
    metrics = [f"127.0.0.1:{free_port()}" for _ in range(count)]
    token = running.admin.join_token(running.address, tags, count)
    with (workdir / "agents.log").open("ab") as logs:
        try:
            for name, listen in zip((f"bench-{i}" for i in range(count)), metrics, strict=True):
                config = workdir / f"{name}.yaml"
                config.write_text(
                    yaml.safe_dump(
                        {
                            "server": running.address,
                            "ca_file": str(running.admin.ca_file),
                            "join_token": token,
                            "instance_name": name,
                            "root_dir": str(workdir / name / "root"),
                            "install_prefix": str(workdir / name / "prefix"),
                            "metrics_listen": listen,
                        }
                    )
                )
                command = [str(BIN / "deploy-agent"), "--config", str(config)]
                processes.append(
                    subprocess.Popen([*command, "--log-level", LOG_LEVEL], stdout=logs, stderr=logs)
                )
            yield RealAgents([f"http://{listen}/metrics" for listen in metrics])
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)


@contextmanager
def real_fleet(
    workdir: Path, agents: int, tags: dict[str, str], config: str
) -> Iterator[tuple[Server, DeployClient, RealAgents]]:
    """A server, `agents` real agents online, and application `bench` with group `all` of
    them deployed by `config`: the server, an administrator's client of it and the agents."""
    with (
        server(workdir) as running,
        real_agents(running, workdir, agents, tags) as started,
        running.admin.client(running.address) as client,
    ):
        wait_online(client, agents, 60)
        create_group(client, tags, config)
        yield running, client, started


def wait_online(client: DeployClient, count: int, timeout: float) -> None:
    def online() -> bool:
        try:
            listed = client.instances()
        except ApiError:  # a server busy with a storm of connections may not answer in time
            return False
        return sum(i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE for i in listed) >= count

    wait(online, timeout, f"{count} agents online")


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


def create_group(client: DeployClient, tags: dict[str, str], config: str) -> None:
    """Application `bench` and its group `all` of the instances with `tags`."""
    client.call(
        client.registry.CreateApplication,
        registry_pb2.CreateApplicationRequest(application_name="bench"),
    )
    client.call(
        client.orchestrator.CreateDeploymentGroup,
        orchestrator_pb2.CreateDeploymentGroupRequest(
            application_name="bench",
            deployment_group_name="all",
            deployment_config_name=config,
            on_premises_instance_tag_filters=[
                common_pb2.TagFilter(key=k, value=v, type=common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE)
                for k, v in tags.items()
            ],
        ),
    )


def deploy_noop(client: DeployClient, workdir: Path, run: int, timeout: float = 300) -> float:
    """Seconds from create-deployment to Succeeded of a new no-op revision of `bench`."""
    bundle = workdir / "bundle.zip"
    digest = make_zip(noop_bundle(workdir / f"src-{run}"), bundle)
    return deploy(client, push(client, bundle, digest), timeout)


def push(client: DeployClient, bundle: Path, digest: str) -> common_pb2.RevisionLocation:
    uploaded = client.upload_bundle(bundle, digest)
    return common_pb2.RevisionLocation(
        revision_type=common_pb2.REVISION_TYPE_REGISTRY, registry_location=uploaded.location
    )


def deploy(client: DeployClient, revision: common_pb2.RevisionLocation, timeout: float) -> float:
    """Seconds from create-deployment to Succeeded of `revision` to group `all` of `bench`."""
    started = time.perf_counter()
    created = client.call(
        client.orchestrator.CreateDeployment,
        orchestrator_pb2.CreateDeploymentRequest(
            application_name="bench", deployment_group_name="all", revision=revision
        ),
    )
    final = None
    updates = client.watch_deployment(created.deployment_id, timeout=timeout, summary_only=True)
    for update in updates:
        if update.deployment_info.status in TERMINAL:
            final = update.deployment_info.status
    elapsed = time.perf_counter() - started
    if final != orchestrator_pb2.DEPLOYMENT_STATUS_SUCCEEDED:
        raise SystemExit(f"deployment {created.deployment_id} did not succeed")
    return elapsed
