"""Real processes for integration tests: deploy-server, deploy-agents and the deploy CLI."""

from __future__ import annotations

import datetime
import os
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.simagents import SimulatedAgents
from deploy import certproof, signing
from deploy.client import DeployClient
from deploy.credentials import CallDetails, Credentials, SigningInterceptor, load_credentials
from deploy.v1 import common_pb2, fleet_pb2
from services.core.pki import service_identity
from tests.processes import BIN, START_TIMEOUT, Process, free_port, spawn, wait_until


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


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def service_proof(
    pki_dir: Path, service: str, path: str, request: Message
) -> list[tuple[str, str]]:
    """Call metadata proving a unary call to `path` as `service`, with a certificate of the
    cluster's authority in `pki_dir` — what that service's process (or whoever took it over)
    sends."""
    identity = service_identity(pki_dir, (service,))
    return certproof.prove(
        identity.key, identity.certificate_der, path, signing.message_hash(request), proof_time()
    )


def proof_time() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
