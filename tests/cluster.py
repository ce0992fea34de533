"""A deploy-server with real agents for integration tests, and gates that hold their hooks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.client import DeployClient
from deploy.credentials import Credentials
from tests.agents import Agent, start_agent, wait_online
from tests.harness import CliResult, access, cli, client_of, start_server
from tests.processes import Process, wait_until


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
