"""Real processes for integration tests: deploy-server, deploy-agents and the deploy CLI."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.client import DeployClient
from deploy.credentials import Credentials, load_credentials
from deploy.v1 import common_pb2, fleet_pb2

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0


_HANDED_OUT: set[int] = set()
"""Ports free_port gave before: a port handed to one agent's app is never handed to another,
even after the first app has stopped or before it has started (apps bind it later)."""


def free_port() -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free port found")


def free_port_range(width: int) -> int:
    """A port base with `width` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        base = random.randrange(20000, 60000 - width)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + width):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no {width} consecutive free ports found")


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Re-check `condition` until it is truthy or the deadline passes (then fail naming `what`)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    metrics_url: str = ""
    """http://…/metrics of a deploy-server."""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait(5)


def spawn(name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            args,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return Process(name, popen, log)


def start_server(
    workdir: Path,
    database_url: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    ca_file: Path | None = None,
) -> tuple[Process, str]:
    """A deploy-server (every service, unless `args` names some with --services); with
    `ca_file` (where its certificate authority will be) it is reached over TLS."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    address = f"127.0.0.1:{port}"
    metrics = f"127.0.0.1:{free_port()}"
    command = [
        str(BIN / "deploy-server"),
        *(args or []),
        "--listen",
        address,
        "--data-dir",
        str(workdir / "data"),
        "--metrics-listen",
        metrics,
    ]
    if database_url:
        command += ["--database-url", database_url]
    process = spawn("deploy-server", command, workdir / "server.log", env)
    process.metrics_url = f"http://{metrics}/metrics"
    wait_serving(address, process, ca_file)
    return process, address


def wait_serving(address: str, process: Process, ca_file: Path | None = None) -> None:
    def serving() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"deploy-server exited: {process.log.read_text()[-2000:]}")
        if ca_file is not None and not ca_file.exists():
            return False  # the server creates its authority first
        try:
            with _channel(address, ca_file) as channel:
                request = health_pb2.HealthCheckRequest()
                status = health_pb2_grpc.HealthStub(channel).Check(request, timeout=1).status
        except grpc.RpcError:
            return False
        return bool(status == health_pb2.HealthCheckResponse.SERVING)

    wait_until(serving, START_TIMEOUT, f"deploy-server on {address}")


def _channel(address: str, ca_file: Path | None) -> grpc.Channel:
    if ca_file is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    return grpc.secure_channel(address, credentials)


@dataclass
class Agent:
    name: str
    root: Path
    prefix: Path
    app_port: int
    config: Path
    process: Process | None = None

    def state_file(self, name: str) -> Path:
        return self.prefix / "var/lib/hello-web" / name

    def stop_app(self) -> None:
        """Stop a hello-web started by the hooks (it runs detached from the agent)."""
        pid_file = self.state_file("server.pid")
        if pid_file.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def start_agent(
    workdir: Path,
    address: str,
    name: str,
    tags: dict[str, str],
    environment: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
) -> Agent:
    """An agent process; `environment` goes to its hooks, `env` to the process itself, `config`
    adds keys to its agent.yaml."""
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    agent = Agent(name, home / "root", home / "prefix", free_port(), home / "agent.yaml")
    agent.config.write_text(
        yaml.safe_dump(
            {
                "server": address,
                "instance_name": name,
                "tags": tags,
                "root_dir": str(agent.root),
                "install_prefix": str(agent.prefix),
                "environment": {
                    "APP_PORT": str(agent.app_port),
                    "INSTANCE": name,
                    **(environment or {}),
                },
                **(config or {}),
            }
        )
    )
    agent.process = spawn(
        name, [str(BIN / "deploy-agent"), "--config", str(agent.config)], home / "agent.log", env
    )
    return agent


def wait_online(
    address: str,
    names: list[str],
    ca_file: Path | None = None,
    credentials: Credentials | None = None,
) -> None:
    with DeployClient(address, str(ca_file) if ca_file else None, credentials) as client:

        def online() -> bool:
            healthy = {
                i.instance_name
                for i in client.instances()
                if i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
            }
            return set(names) <= healthy

        wait_until(online, START_TIMEOUT, f"agents {names} online")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


def cli(
    address: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> CliResult:
    """Run the real `deploy` command against `address`."""
    done = subprocess.run(
        [str(BIN / "deploy"), "--endpoint", address, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@dataclass
class Cluster:
    """A deploy-server and its agents, all real processes on 127.0.0.1."""

    workdir: Path
    address: str
    server: Process
    agents: list[Agent] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of every process of the cluster, the CLI's included."""
    ca_file: Path | None = None
    """Over TLS: the server's certificate authority."""
    credentials: Credentials | None = None
    """With authentication on: the administrator's access key (the CLI reads it from `env`)."""

    def client(self) -> DeployClient:
        """An SDK client as the administrator, over TLS when the cluster uses it."""
        return DeployClient(
            self.address, str(self.ca_file) if self.ca_file else None, self.credentials
        )

    def cli(self, *args: str) -> CliResult:
        return cli(self.address, *args, env=self.env)

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop_app()
            if agent.process:
                agent.process.stop()
        self.server.stop()


@contextmanager
def cluster(
    workdir: Path,
    database_url: str,
    agents: int,
    tag: str,
    env: dict[str, str] | None = None,
    agent_config: dict[str, Any] | None = None,
    tls: bool = False,
    auth: bool = False,
) -> Iterator[Cluster]:
    """A server and `agents` agents tagged cluster=`tag`; with `tls` everything speaks TLS
    (the server's own certificate authority, trusted by the agents and the CLI); with `auth`
    every call is signed, the CLI's with the administrator key the server creates."""
    ca_file = workdir / "data" / "pki" / "ca.pem" if tls else None
    if ca_file is not None:
        env = {**(env or {}), "OPENDEPLOY_TLS": "1", "DEPLOY_CA_FILE": str(ca_file)}
        agent_config = {**(agent_config or {}), "ca_file": str(ca_file)}
    if auth:
        admin = str(workdir / "data" / "admin-credentials")
        env = {**(env or {}), "OPENDEPLOY_AUTH": "1", "DEPLOY_SHARED_CREDENTIALS_FILE": admin}
    server, address = start_server(workdir, database_url, env=env, ca_file=ca_file)
    credentials = None
    if auth:
        admin_file = workdir / "data" / "admin-credentials"
        wait_until(admin_file.exists, START_TIMEOUT, "the administrator key")
        credentials = load_credentials(None, {"DEPLOY_SHARED_CREDENTIALS_FILE": str(admin_file)})
    running = Cluster(workdir, address, server, env=env or {}, ca_file=ca_file)
    running.credentials = credentials
    try:
        for i in range(1, agents + 1):
            name, tags = f"{tag}-{i}", {"cluster": tag, "name": f"{tag}-{i}"}
            config = dict(agent_config or {})
            if auth:  # registered first; the agent enrols with the registration's token
                config["join_token"] = register(running, name, tags)
            running.agents.append(start_agent(workdir, address, name, tags, env=env, config=config))
        wait_online(address, [a.name for a in running.agents], ca_file, credentials)
        yield running
    finally:
        running.stop()


def register(running: Cluster, name: str, tags: dict[str, str]) -> str:
    """Register an instance as the cluster's administrator; its join token."""
    with running.client() as client:
        return str(
            client.call(
                client.fleet.RegisterOnPremisesInstance,
                fleet_pb2.RegisterOnPremisesInstanceRequest(
                    instance_name=name,
                    tags=[common_pb2.Tag(key=k, value=v) for k, v in tags.items()],
                ),
            ).join_token
        )


def gate_script(gate: Path) -> str:
    """Shell lines that block a hook on the FIFO `gate` until `open_gate` lets it through."""
    return f"cat {gate} >/dev/null\necho x >> {gate}.passed\n"


def open_gate(gate: Path, through: int) -> None:
    """Let hooks blocked on `gate` go until `through` have passed it in all. Each round opens
    and closes the FIFO for writing, which ends the reads of the hooks waiting on it right then;
    a hook that announced itself but has not reached the gate yet goes in a later round."""
    passed = Path(f"{gate}.passed")

    def all_through() -> bool:
        with suppress(OSError):  # ENXIO: no hook is waiting right now
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
        return passed.exists() and len(passed.read_text().split()) >= through

    wait_until(all_through, 60, f"{through} hook(s) through the gate")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
