"""Ports and paths of one local cluster, all derived from CLUSTER_DIR and PORT_BASE."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICES = ("registry", "fleet", "orchestrator", "traffic", "identity")
GRPC_PATHS = {
    "registry": ("/deploy.v1.RevisionRegistry/",),
    "fleet": ("/deploy.v1.Fleet/", "/deploy.v1.AgentGateway/"),
    "orchestrator": ("/deploy.v1.Orchestrator/",),
    "traffic": ("/deploy.v1.TrafficRouter/",),
    "identity": ("/deploy.v1.Identity/",),
}


@dataclass(frozen=True)
class ClusterLayout:
    directory: Path
    port_base: int
    agents: int

    @property
    def endpoint(self) -> str:
        """The front door: HAProxy routing by gRPC path, or the embedded deploy-server."""
        return f"127.0.0.1:{self.port_base}"

    def service_port(self, service: str) -> int:
        return self.port_base + 1 + SERVICES.index(service)

    def metrics_port(self, service: str) -> int:
        return self.port_base + 11 + SERVICES.index(service)

    @property
    def embedded_metrics_port(self) -> int:
        return self.port_base + 10

    @property
    def web_port(self) -> int:
        return self.port_base + 80

    @property
    def prometheus_port(self) -> int:
        return self.port_base + 90

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def app_port(self, index: int) -> int:
        """APP_PORT of agent-<index> (1-based): PORT_BASE+81… for the first nine, PORT_BASE+110…
        beyond (agents the provisioner adds), clear of Prometheus on PORT_BASE+90."""
        return self.port_base + (80 if index < 10 else 100) + index

    def agent_metrics_port(self, index: int) -> int:
        """Where agent-<index> serves /metrics: PORT_BASE+201…"""
        return self.port_base + 200 + index

    def agent_name(self, index: int) -> str:
        return f"agent-{index}"

    def agent_home(self, index: int) -> Path:
        return self.directory / "agents" / self.agent_name(index)

    def agent_indices(self) -> list[int]:
        """The indices of every agent this cluster ever started (each has a home), ascending."""
        homes = (self.directory / "agents").glob("agent-*")
        return sorted(int(p.name.rsplit("-", 1)[1]) for p in homes if p.name[6:].isdigit())

    @property
    def pids(self) -> Path:
        return self.directory / "pids"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def ca_file(self) -> Path:
        """The cluster's certificate authority, which every client and agent trusts (the
        services create it in the shared data directory on their first start)."""
        return self.data / "pki" / "ca.pem"

    @property
    def front_certificate(self) -> Path:
        """HAProxy's certificate and key for the front door (issued at every start)."""
        return self.directory / "front-door.pem"

    @property
    def admin_credentials(self) -> Path:
        """The administrator key the identity service writes on its first start."""
        return self.data / "admin-credentials"

    @property
    def rules_dir(self) -> Path:
        """Alerting rule files of the operator's own, loaded with OpenDeploy's."""
        return self.directory / "rules"

    @property
    def agent_targets(self) -> Path:
        """Prometheus's file of agent targets."""
        return self.directory / "prometheus-agents.json"

    @property
    def env_file(self) -> Path:
        return self.directory / "env"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"
