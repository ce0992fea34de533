"""Real processes for integration tests: deploy-server, deploy-agents and the deploy CLI."""

from __future__ import annotations

import datetime
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.simagents import SimulatedAgents
from deploy import certproof, signing
from deploy.client import DeployClient
from deploy.credentials import CallDetails, Credentials, SigningInterceptor, load_credentials
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2, fleet_pb2
from services.core.pki import service_identity

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


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux's default 32768)."""
    with suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port_range(width: int) -> int:
    """A port base with `width` consecutive free ports on 127.0.0.1, below the ephemeral range:
    a range is probed now and bound later (an app by its start hook), and in between any
    outgoing connection on the machine could be given a port inside the ephemeral range."""
    top = max(_ephemeral_low(), 10000 + 2 * width)
    for _ in range(50):
        base = random.randrange(10000, top - width)
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


def required_tool(binary: str, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of a Debian package's binary the test needs (looked for on PATH, then at the
    paths in `also`): missing, the test fails under CI=true (.ci/run installs it) and is
    skipped elsewhere."""
    found = shutil.which(binary) or next((p for p in also if Path(p).exists()), None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs {binary} (.ci/run installs Debian's {package})")
        pytest.skip(f"{binary} is not installed (Debian's {package})")
    return found


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


@dataclass(frozen=True)
class Access:
    """How the tests reach a server, as a user would: over TLS trusting its authority, every
    call signed with its administrator's key (a server started with --no-tls or --no-auth is
    reached without)."""

    address: str
    tls: bool = True
    ca_file: Path | None = None
    """None: the system's roots."""
    credentials_file: Path | None = None

    @property
    def endpoint(self) -> str:
        return self.address if self.tls else f"http://{self.address}"

    def env(self) -> dict[str, str]:
        """What makes the CLI (and agents' hooks, which do not read it) reach the server."""
        env = {"DEPLOY_ENDPOINT": self.endpoint}
        if self.ca_file:
            env["DEPLOY_CA_FILE"] = str(self.ca_file)
        if self.credentials_file:
            env["DEPLOY_SHARED_CREDENTIALS_FILE"] = str(self.credentials_file)
        return env

    def credentials(self) -> Credentials | None:
        if self.credentials_file is None:
            return None
        wait_until(self.credentials_file.exists, START_TIMEOUT, "the administrator key")
        return load_credentials(
            None, {"DEPLOY_SHARED_CREDENTIALS_FILE": str(self.credentials_file)}
        )


_ACCESS: dict[str, Access] = {}
"""Every server started, by address (a restarted one keeps its authority and keys)."""
_CLUSTERS: dict[str, Access] = {}
"""The first server started on each PostgreSQL database: the servers of a database are one
cluster, sharing its authority and keys (the secrets in its tables are sealed with them)."""


def access(address: str) -> Access:
    return _ACCESS.get(address) or Access(address)


def share_access(address: str, like: str) -> None:
    """Reach `address` as `like` is reached: a process without the identity service checks
    keys with its peer, so the administrator's key is the peer's."""
    _ACCESS[address] = replace(access(like), address=address)


def known_server(address: str, data_dir: Path) -> None:
    """Reach a server the tests did not start themselves (make cluster's front door) as those
    they did: with the authority and the administrator key in its data directory."""
    _ACCESS[address] = Access(
        address, True, data_dir / "pki" / "ca.pem", data_dir / "admin-credentials"
    )


def simulated_agents(
    address: str, names: Sequence[str], tags: dict[str, str], **options: Any
) -> SimulatedAgents:
    """Simulated agents (bench.simagents) of a server the tests started, enrolling with a join
    token of its administrator's when it checks identities; `options` go to SimulatedAgents."""
    reach = access(address)
    token = ""
    if reach.credentials_file:
        with client_of(address) as admin:
            token = admin.call(
                admin.fleet.CreateJoinToken,
                fleet_pb2.CreateJoinTokenRequest(
                    tags=[common_pb2.Tag(key=k, value=v) for k, v in tags.items()],
                    max_uses=len(names),
                ),
            ).join_token
    ca_file = reach.ca_file if reach.tls else None
    return SimulatedAgents(address, names, tags, ca_file, token, **options)


def client_of(address: str, signed: bool = True, service: str | None = None) -> DeployClient:
    """An SDK client of a server the tests started: as its administrator, anonymous (`signed`
    False), or as one of its services (`service`: proved with a certificate of its authority,
    for the internal RPCs)."""
    reach = access(address)
    ca_file = str(reach.ca_file) if reach.ca_file else None
    if service is not None:
        assert reach.ca_file is not None, "services prove calls with the cluster's authority"
        proof = ServiceProof(reach.ca_file.parent, service)
        return DeployClient(reach.endpoint, ca_file, None, interceptors=[proof])
    return DeployClient(reach.endpoint, ca_file, reach.credentials() if signed else None)


class ServiceProof(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Proves unary calls as `service`, as that service's process does."""

    def __init__(self, pki_dir: Path, service: str) -> None:
        self._pki_dir, self._service = pki_dir, service

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method if isinstance(details.method, str) else details.method.decode()
        proof = service_proof(self._pki_dir, self._service, method, request)
        return continuation(CallDetails(details, proof), request)


def channel_to(address: str, signed: bool = True) -> grpc.Channel:
    """A raw gRPC channel to a server the tests started, its calls signed as the
    administrator's (or not)."""
    reach = access(address)
    if reach.tls:
        authority = reach.ca_file.read_bytes() if reach.ca_file else None
        raw = grpc.secure_channel(address, grpc.ssl_channel_credentials(authority))
    else:
        raw = grpc.insecure_channel(address)
    credentials = reach.credentials() if signed else None
    return grpc.intercept_channel(raw, SigningInterceptor(credentials)) if credentials else raw


def start_server(
    workdir: Path,
    database_url: str,
    port: int | None = None,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    tls: bool = True,
    auth: bool = True,
    pki_dir: Path | None = None,
) -> tuple[Process, str]:
    """A deploy-server (every service, unless `args` names some with --services), secure as
    it is by default: TLS with its certificate authority (in `pki_dir`, shared by the
    processes of a split cluster; default its data directory's), authentication with the
    administrator key its identity service creates. `tls`/`auth` False turn them off."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    address = f"127.0.0.1:{port}"
    metrics = f"127.0.0.1:{free_port()}"
    shared = _CLUSTERS.get(database_url) if database_url else None
    pki_dir = pki_dir or (shared.ca_file.parent if shared and shared.ca_file else None)
    pki_dir = pki_dir or workdir / "data" / "pki"
    command = [
        str(BIN / "deploy-server"),
        *(args or []),
        "--listen",
        address,
        "--data-dir",
        str(workdir / "data"),
        "--metrics-listen",
        metrics,
        "--pki-dir",
        str(pki_dir),
        "--tls" if tls else "--no-tls",
        "--auth" if auth else "--no-auth",
    ]
    if database_url:
        command += ["--database-url", database_url]
    services = (
        (args or [])[(args or []).index("--services") + 1] if "--services" in (args or []) else ""
    )
    if not auth:
        admin = None
    elif shared is not None:  # its identity service found the first one's administrator
        admin = shared.credentials_file
    elif not services or "identity" in services.split(","):
        admin = workdir / "data" / "admin-credentials"
    else:  # keys are checked by its peer: share_access says whose (kept across restarts)
        admin = access(address).credentials_file
    _ACCESS[address] = Access(address, tls, pki_dir / "ca.pem" if tls else None, admin)
    if database_url:
        _CLUSTERS.setdefault(database_url, _ACCESS[address])
    # a crash prints its Python stacks into the log
    env = {"PYTHONFAULTHANDLER": "1", **(env or {})}
    process = spawn("deploy-server", command, workdir / "server.log", env)
    process.metrics_url = f"http://{metrics}/metrics"
    wait_serving(address, process)
    return process, address


@dataclass
class Split:
    """The services over two processes sharing one authority: the fleet with the registry at
    `fleet_address`; the orchestrator with traffic and identity at `address` (the fleet's process
    checks keys with it)."""

    workdir: Path
    fleet_address: str
    address: str
    fleet: Process = field(init=False)
    orchestrator: Process = field(init=False)

    def start_fleet(self) -> None:
        self.fleet, _ = start_server(
            self.workdir / "fleet",
            "",
            port=int(self.fleet_address.rsplit(":", 1)[1]),
            env={"OPENDEPLOY_PEER_IDENTITY": self.address},
            args=["--services", "fleet,registry"],
            pki_dir=self.workdir / "pki",
        )

    def stop(self) -> None:
        self.orchestrator.stop()
        self.fleet.stop()


def split_servers(workdir: Path) -> Split:
    split = Split(workdir, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
    split.start_fleet()
    split.orchestrator, _ = start_server(
        workdir / "orchestrator",
        "",
        port=int(split.address.rsplit(":", 1)[1]),
        env={
            "OPENDEPLOY_PEER_FLEET": split.fleet_address,
            "OPENDEPLOY_PEER_REGISTRY": split.fleet_address,
        },
        args=["--services", "orchestrator,traffic,identity"],
        pki_dir=workdir / "pki",
    )
    share_access(split.fleet_address, split.address)
    return split


def wait_serving(address: str, process: Process) -> None:
    ca_file = access(address).ca_file

    def serving() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"deploy-server exited: {process.log.read_text()[-2000:]}")
        if ca_file is not None and not ca_file.exists():
            return False  # the server creates its authority first
        try:
            with channel_to(address, signed=False) as connection:
                request = health_pb2.HealthCheckRequest()
                status = health_pb2_grpc.HealthStub(connection).Check(request, timeout=1).status
        except grpc.RpcError:
            return False
        return bool(status == health_pb2.HealthCheckResponse.SERVING)

    wait_until(serving, START_TIMEOUT, f"deploy-server on {address}")


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
    """An agent process of a server the tests started (registered first when it checks
    identities, and enrolling with the registration's token; trusting its authority);
    `environment` goes to its hooks, `env` to the process itself, `config` adds keys to its
    agent.yaml."""
    home = workdir / name
    home.mkdir(parents=True, exist_ok=True)
    agent = Agent(name, home / "root", home / "prefix", free_port(), home / "agent.yaml")
    reach = access(address)
    secure: dict[str, Any] = {"ca_file": str(reach.ca_file)} if reach.ca_file else {}
    if reach.credentials_file and not (config or {}).get("join_token"):
        secure["join_token"] = register(address, name, tags)
    agent.config.write_text(
        yaml.safe_dump(
            {
                "server": reach.endpoint,
                "instance_name": name,
                "tags": tags,
                "root_dir": str(agent.root),
                "install_prefix": str(agent.prefix),
                "environment": {
                    "APP_PORT": str(agent.app_port),
                    "INSTANCE": name,
                    **(environment or {}),
                },
                **secure,
                **(config or {}),
            }
        )
    )
    agent.process = spawn(
        name, [str(BIN / "deploy-agent"), "--config", str(agent.config)], home / "agent.log", env
    )
    return agent


def register(address: str, name: str, tags: dict[str, str]) -> str:
    """Register an instance as the server's administrator; its join token."""
    with client_of(address) as admin:
        return str(
            admin.call(
                admin.fleet.RegisterOnPremisesInstance,
                fleet_pb2.RegisterOnPremisesInstanceRequest(
                    instance_name=name,
                    tags=[common_pb2.Tag(key=k, value=v) for k, v in tags.items()],
                ),
            ).join_token
        )


def wait_online(address: str, names: list[str]) -> None:
    with client_of(address) as admin:

        def online() -> bool:
            healthy = {
                i.instance_name
                for i in admin.instances()
                if i.health == fleet_pb2.INSTANCE_HEALTH_ONLINE
            }
            return set(names) <= healthy

        wait_until(online, START_TIMEOUT, f"agents {names} online")


def agent_proof(agent: Agent, path: str) -> list[tuple[str, str]]:
    """Call metadata proving a stream call to `path` with `agent`'s enrolled certificate, as
    the agent itself does."""
    pem = (agent.root / "identity" / "identity.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    certificate = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return certproof.prove(key, certificate, path, signing.UNSIGNED_PAYLOAD, _now())


def refused_hello(address: str, agent: Agent, hello: agent_pb2.AgentHello) -> grpc.RpcError:
    """Open an agent stream proved with `agent`'s certificate and say `hello`; the refusal
    (the test fails if the stream is accepted)."""
    path = "/deploy.v1.AgentGateway/Connect"
    with channel_to(address, signed=False) as connection:
        stream = agent_pb2_grpc.AgentGatewayStub(connection).Connect(
            iter([agent_pb2.ConnectRequest(hello=hello)]),
            metadata=agent_proof(agent, path),
            timeout=30,
        )
        try:
            next(iter(stream))
        except grpc.RpcError as error:
            return error
    raise AssertionError(f"the fleet accepted {agent.name}'s hello as {hello.instance_name}")


def service_proof(
    pki_dir: Path, service: str, path: str, request: Message
) -> list[tuple[str, str]]:
    """Call metadata proving a unary call to `path` as `service`, with a certificate of the
    cluster's authority in `pki_dir` — what that service's process (or whoever took it over)
    sends."""
    identity = service_identity(pki_dir, (service,))
    return certproof.prove(
        identity.key, identity.certificate_der, path, signing.message_hash(request), _now()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


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
    """Run the real `deploy` command against a server the tests started, as its
    administrator (`env` may take that away)."""
    reach = access(address)
    done = subprocess.run(
        [str(BIN / "deploy"), "--endpoint", reach.endpoint, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **reach.env(), **(env or {})},
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

    @property
    def ca_file(self) -> Path | None:
        """The server's certificate authority (None: plaintext)."""
        return access(self.address).ca_file

    @property
    def pki_dir(self) -> Path:
        """The cluster's certificate authority and command key."""
        return self.workdir / "data" / "pki"

    @property
    def credentials(self) -> Credentials | None:
        """The administrator's access key (None: authentication off)."""
        return access(self.address).credentials()

    def client(self) -> DeployClient:
        """An SDK client as the administrator."""
        return client_of(self.address)

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
    tls: bool = True,
    auth: bool = True,
) -> Iterator[Cluster]:
    """A server and `agents` agents tagged cluster=`tag`, secure as by default (TLS and
    authentication; the agents enrol, the CLI signs as the administrator)."""
    server, address = start_server(workdir, database_url, env=env, tls=tls, auth=auth)
    running = Cluster(workdir, address, server, env={**(env or {}), **access(address).env()})
    try:
        for i in range(1, agents + 1):
            name, tags = f"{tag}-{i}", {"cluster": tag, "name": f"{tag}-{i}"}
            running.agents.append(
                start_agent(workdir, address, name, tags, env=env, config=agent_config)
            )
        wait_online(address, [a.name for a in running.agents])
        yield running
    finally:
        running.stop()


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
