"""Real deploy-agents for integration tests, and the proofs and hellos they send."""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from deploy import certproof, signing
from deploy.v1 import agent_pb2, agent_pb2_grpc, common_pb2, fleet_pb2
from tests.harness import access, channel_to, client_of, proof_time
from tests.processes import BIN, START_TIMEOUT, Process, free_port, spawn, wait_until


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
    return certproof.prove(key, certificate, path, signing.UNSIGNED_PAYLOAD, proof_time())


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
