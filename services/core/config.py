"""Server configuration: a YAML file, then OPENDEPLOY_* environment variables, then flags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.core.errors import InvalidArgument

SERVICE_NAMES = ("registry", "fleet", "orchestrator", "traffic")


@dataclass
class ServerConfig:
    """What one deploy-server process serves, where it listens and where it keeps state."""

    listen: str = "127.0.0.1:7400"
    """host:port of the gRPC server."""
    metrics_listen: str = "127.0.0.1:0"
    """host:port of the Prometheus /metrics endpoint; port 0 picks a free one (logged)."""
    services: tuple[str, ...] = SERVICE_NAMES
    """Which services this process runs; all four by default (the embedded mode)."""
    data_dir: Path = Path(".opendeploy")
    """Where SQLite files and the bundle store live."""
    database_url: str = ""
    """SQLAlchemy URL shared by the services; empty: one SQLite file per service in data_dir."""
    peers: dict[str, str] = field(default_factory=dict)
    """Address of each service not run here; services run here are reached at `listen`."""
    heartbeat_interval_seconds: int = 5
    """How often agents send a heartbeat; an instance is Offline after three missed ones."""
    git_base_url: str = "https://github.com/"
    """Where a Git revision's "owner/repo" is cloned from (a full clone URL is used as is)."""
    provisioners: dict[str, dict[str, str]] = field(default_factory=dict)
    """Blue/green replacement fleets: name → {"command": …} or {"url": …} (orchestrator)."""

    def peer_address(self, service: str) -> str:
        """Where to reach `service`: configured peer, else this process."""
        return self.peers.get(service, self.listen)

    def database_url_for(self, service: str) -> str:
        """The database URL a service uses."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{service}.db').resolve()}"


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> ServerConfig:
    """Read the YAML file (if any) and apply OPENDEPLOY_* environment overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidArgument(f"config {path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidArgument(f"config {path}: expected a mapping at the top level")
        raw = dict(loaded or {})
    env = os.environ if environ is None else environ
    for key in ("listen", "metrics_listen", "data_dir", "database_url", "git_base_url"):
        value = env.get(f"OPENDEPLOY_{key.upper()}")
        if value:
            raw[key] = value
    provisioners = env.get("OPENDEPLOY_PROVISIONERS")
    if provisioners:
        try:
            raw["provisioners"] = json.loads(provisioners)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"OPENDEPLOY_PROVISIONERS: invalid JSON ({exc.msg})") from exc
    for service in SERVICE_NAMES:
        value = env.get(f"OPENDEPLOY_PEER_{service.upper()}")
        if value:
            raw.setdefault("peers", {})[service] = value
    return _from_mapping(raw)


def _from_mapping(raw: dict[str, Any]) -> ServerConfig:
    known = {
        "listen",
        "metrics_listen",
        "services",
        "data_dir",
        "database_url",
        "peers",
        "heartbeat_interval_seconds",
        "git_base_url",
        "provisioners",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidArgument(f"config: unknown key(s) {', '.join(unknown)}")
    config = ServerConfig()
    if "services" in raw:
        config.services = parse_services(raw["services"])
    for key in ("listen", "metrics_listen", "database_url", "git_base_url"):
        if key in raw:
            setattr(config, key, str(raw[key]))
    if "data_dir" in raw:
        config.data_dir = Path(str(raw["data_dir"]))
    if "peers" in raw:
        peers = raw["peers"]
        if not isinstance(peers, dict) or not set(peers) <= set(SERVICE_NAMES):
            raise InvalidArgument(f"config: peers must map {', '.join(SERVICE_NAMES)} to host:port")
        config.peers = {str(k): str(v) for k, v in peers.items()}
    if "heartbeat_interval_seconds" in raw:
        config.heartbeat_interval_seconds = int(raw["heartbeat_interval_seconds"])
    if "provisioners" in raw:
        config.provisioners = _provisioners(raw["provisioners"])
    return config


def _provisioners(value: Any) -> dict[str, dict[str, str]]:
    """name → exactly one of {"command": "…"} or {"url": "http(s)://…"}."""
    if not isinstance(value, dict):
        raise InvalidArgument("config: provisioners must map names to {command} or {url}")
    checked = {}
    for name, spec in value.items():
        if not isinstance(spec, dict) or len(spec) != 1 or not set(spec) <= {"command", "url"}:
            raise InvalidArgument(
                f"config: provisioners.{name} needs exactly one of command or url"
            )
        checked[str(name)] = {str(k): str(v) for k, v in spec.items()}
    return checked


def parse_services(value: Any) -> tuple[str, ...]:
    """Parse a comma-separated string or a list of service names."""
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    bad = [n for n in names if n not in SERVICE_NAMES]
    if bad or not names:
        raise InvalidArgument(
            f"services: unknown service {', '.join(bad) or '(none)'}; "
            f"choose from {', '.join(SERVICE_NAMES)}"
        )
    return tuple(dict.fromkeys(names))
