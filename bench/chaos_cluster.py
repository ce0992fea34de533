"""The processes `make chaos` kills and starts again: the fleet (with the registry), the
orchestrator (with the traffic service), HAProxy and the agents, each host with a web app that
HAProxy checks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from bench.access import Admin, serving
from bench.cluster import BIN, free_port, wait

GREEN_HOSTS = 2
"""Hosts of the blue/green application's replacement fleet, beside the agents."""
LOAD_BALANCER = "chaos-haproxy"


@dataclass
class Node:
    """One process of the cluster, started again after each kill with the same arguments."""

    name: str
    args: list[str]
    log: Path
    address: str = ""
    """host:port a service serves on (empty for an agent)."""
    ca_file: Path = Path()
    """The authority its TLS certificate chains to (a service's)."""
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.popen = subprocess.Popen(
                self.args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.address:
            wait(lambda: serving(self.address, self.ca_file), 60, self.name)

    def kill(self) -> None:
        """SIGKILL the process and everything it started (an agent's running hooks too), as
        a crashed host would end."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Health checks hang up early; that is no error worth a traceback."""


class WebApp:
    """A host's web app (always up: what HAProxy's health check finds when it is let in)."""

    def __init__(self, name: str) -> None:
        body = name.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Cluster:
    workdir: Path
    agents: int
    database_url: str
    fleet: Node = field(init=False)
    orchestrator: Node = field(init=False)
    haproxy: Node = field(init=False)
    admin: Admin = field(init=False)
    hosts: list[Node] = field(default_factory=list)
    apps: dict[str, WebApp] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fleet_address, address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        self.admin = Admin(self.workdir / "pki", self.workdir / "orchestrator")
        self.haproxy = self._haproxy()
        self.fleet = self._server(
            "fleet", fleet_address, "fleet,registry", {"OPENDEPLOY_PEER_IDENTITY": address}
        )
        balancers = {LOAD_BALANCER: {"haproxy": {"admin_socket": str(self.admin_socket)}}}
        self.orchestrator = self._server(
            "orchestrator",
            address,
            "orchestrator,traffic,identity",
            {
                "OPENDEPLOY_PEER_FLEET": fleet_address,
                "OPENDEPLOY_PEER_REGISTRY": fleet_address,
                "OPENDEPLOY_LOAD_BALANCERS": json.dumps(balancers),
            },
        )
        for index in range(1, self.agents + GREEN_HOSTS + 1):
            name = f"chaos-{index}"
            fleet = "chaos" if index <= self.agents else "chaos-green"
            self.hosts.append(self._agent(name, fleet_address, fleet))
            self.apps[name] = WebApp(name)

    @property
    def admin_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def _haproxy(self) -> Node:
        """HAProxy in the foreground (-db), so that a kill is the process's own; its backend
        starts empty and the traffic service fills it."""
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            "\n".join(
                [
                    "global",
                    f"    stats socket {self.admin_socket} mode 600 level admin",
                    "defaults",
                    "    mode http",
                    "    timeout connect 2s",
                    "    timeout client 30s",
                    "    timeout server 30s",
                    "frontend web",
                    f"    bind 127.0.0.1:{free_port()}",
                    "    default_backend web",
                    "backend web",
                    "    balance roundrobin",
                    "    option httpchk GET /",
                    "",
                ]
            )
        )
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        return Node("haproxy", [binary, "-db", "-f", str(config)], self.workdir / "haproxy.log")

    def _server(self, name: str, address: str, services: str, env: dict[str, str]) -> Node:
        data = self.workdir / name
        args = [
            "env",
            "PYTHONFAULTHANDLER=1",
            *(f"{k}={v}" for k, v in env.items()),
            str(BIN / "deploy-server"),
            "--services",
            services,
            "--listen",
            address,
            "--metrics-listen",
            f"127.0.0.1:{free_port()}",
            "--data-dir",
            str(data),
            "--pki-dir",
            str(self.admin.pki_dir),
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        data.mkdir(parents=True, exist_ok=True)
        return Node(name, args, self.workdir / f"{name}.log", address, self.admin.ca_file)

    def _agent(self, name: str, fleet_address: str, fleet: str) -> Node:
        home = self.workdir / name
        home.mkdir(parents=True)
        config = home / "agent.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "server": fleet_address,
                    "ca_file": str(self.admin.ca_file),
                    "instance_name": name,
                    "tags": {"cluster": fleet},
                    "root_dir": str(home / "root"),
                    "install_prefix": str(home / "prefix"),
                    "environment": {"JOURNAL": str(self.journal(name)), "INSTANCE": name},
                }
            )
        )
        args = [str(BIN / "deploy-agent"), "--config", str(config)]
        return Node(name, args, home / "agent.log")

    def journal(self, host: str) -> Path:
        """Where the hooks on `host` write a line per run."""
        return self.workdir / f"{host}.journal"

    @property
    def nodes(self) -> list[Node]:
        return [self.haproxy, self.fleet, self.orchestrator, *self.hosts]

    def start(self) -> None:
        """HAProxy and the services, then the agents, enrolling with a token per fleet."""
        for node in (self.haproxy, self.fleet, self.orchestrator):
            node.start()
            if node is self.haproxy:
                wait(self.admin_socket.exists, 30, "HAProxy's admin socket")
        self.admin.wait_for_key(wait)
        tokens = {
            fleet: self.admin.join_token(self.fleet.address, {"cluster": fleet}, uses)
            for fleet, uses in (("chaos", self.agents), ("chaos-green", GREEN_HOSTS))
        }
        for host in self.hosts:
            config = Path(host.args[-1])
            settings = yaml.safe_load(config.read_text())
            config.write_text(
                yaml.safe_dump({**settings, "join_token": tokens[settings["tags"]["cluster"]]})
            )
            host.start()

    def restart(self, node: Node) -> None:
        if node is self.haproxy:
            self.admin_socket.unlink(missing_ok=True)
        node.start()
        if node is self.haproxy:
            wait(self.admin_socket.exists, 30, "HAProxy's admin socket")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        for app in self.apps.values():
            app.stop()
