"""Server configuration: a YAML file, then OPENDEPLOY_* environment variables, then flags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.bundlelimits import LIMIT_KEYS, BundleLimits, limits_from_mapping
from deploy.gitpolicy import (
    DEFAULT_ALLOWED_SCHEMES,
    SUPPORTED_SCHEMES,
    check_schemes,
    check_url,
)
from services.core.errors import InvalidArgument
from services.core.outbound import DEFAULT_DENIED_NETWORKS, OutboundPolicy, parse_networks

SERVICE_NAMES = ("registry", "fleet", "orchestrator", "traffic", "identity")
STRING_KEYS = (
    "listen",
    "metrics_listen",
    "data_dir",
    "database_url",
    "git_base_url",
    "pki_dir",
    "prometheus_url",
)
LIST_KEYS = ("git_allowed_schemes", "outbound_allowed_networks", "outbound_denied_networks")
"""Keys whose OPENDEPLOY_* variable is a comma-separated list."""
JSON_KEYS = ("provisioners", "load_balancers")
"""Keys whose OPENDEPLOY_* variable is JSON."""
INT_KEYS = (
    "heartbeat_interval_seconds",
    "max_heartbeats_per_second",
    "command_ack_timeout_seconds",
    "command_grace_seconds",
    "shutdown_grace_seconds",
    "grpc_max_message_bytes",
    "grpc_max_concurrent_streams",
    "agent_certificate_seconds",
    "alarm_poll_seconds",
    *LIMIT_KEYS,
)
BOOL_KEYS = ("reflection_from_anywhere", "tls", "auth")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class ServerConfig:
    """What one deploy-server process serves, where it listens and where it keeps state."""

    listen: str = "127.0.0.1:7400"
    """host:port of the gRPC server."""
    metrics_listen: str = "127.0.0.1:0"
    """host:port of the Prometheus /metrics endpoint; port 0 picks a free one (logged)."""
    services: tuple[str, ...] = SERVICE_NAMES
    """Which services this process runs; all of them by default (the embedded mode)."""
    data_dir: Path = Path(".opendeploy")
    """Where SQLite files and the bundle store live."""
    database_url: str = ""
    """SQLAlchemy URL shared by the services; empty: one SQLite file per service in data_dir."""
    peers: dict[str, str] = field(default_factory=dict)
    """Address of each service not run here; services run here are reached at `listen`."""
    heartbeat_interval_seconds: int = 5
    """How often agents send a heartbeat; an instance is Offline after three missed ones."""
    max_heartbeats_per_second: int = 250
    """The most heartbeats a second the fleet asks of all its agents together: beyond
    heartbeat_interval_seconds times this many agents, newly connecting agents get a longer
    interval (and their offline window grows with it)."""
    command_ack_timeout_seconds: int = 60
    """How long an agent has to acknowledge a lifecycle event (its start deadline)."""
    command_grace_seconds: int = 60
    """Added to the time an event's scripts may take: its end deadline."""
    shutdown_grace_seconds: int = 10
    """After SIGTERM, how long the process may take to end its calls and streams."""
    git_base_url: str = "https://github.com/"
    """Where a Git revision's "owner/repo" is cloned from (a full clone URL is used as is)."""
    provisioners: dict[str, dict[str, str]] = field(default_factory=dict)
    """Blue/green replacement fleets: name → {"command": …} or {"url": …} (orchestrator)."""
    git_allowed_schemes: tuple[str, ...] = DEFAULT_ALLOWED_SCHEMES
    """Transports the registry may fetch Git revisions over (https, http, git, ssh)."""
    bundle_limits: BundleLimits = field(default_factory=BundleLimits)
    """Bundle size, unpacked size, entry count and ratio the registry accepts."""
    load_balancers: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """name → {"haproxy": {"admin_socket": …}} or {"elbv2": {"target_group_arn": …, "region":
    …, "endpoint_url": …}}: what target groups may use (traffic). Never from an API request."""
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    """Where webhooks and provisioner URLs may connect (checked after DNS resolution)."""
    grpc_max_message_bytes: int = 4 * 1024 * 1024
    """Largest gRPC message a client may send (bundles stream in chunks far below it)."""
    grpc_max_concurrent_streams: int = 1000
    """Concurrent calls (agent streams included) one client connection may hold open."""
    reflection_from_anywhere: bool = False
    """gRPC reflection answers loopback callers only unless this is set."""
    tls: bool = True
    """Serve gRPC over TLS with a certificate of the cluster's authority (OpenDeploy's own, or
    the operator's placed in pki_dir), and reach peers over TLS; clients trust the authority's
    certificate (pki_dir/ca.pem). Off only by choice (behind a proxy that terminates TLS)."""
    pki_dir: Path | None = None
    """Where the certificate authority lives; None: data_dir/pki. The processes of one cluster
    share it."""
    agent_certificate_seconds: int = 86400
    """How long an enrolled agent's certificate lives (fleet); agents renew it at half-life."""
    prometheus_url: str = ""
    """The Prometheus whose alerting rules are the alarms of deployment groups (orchestrator);
    empty: none, and a deployment that watches alarms cannot read them."""
    alarm_poll_seconds: int = 5
    """How often an active deployment's alarms are read."""
    auth: bool = True
    """Every call must be signed with an access key and be allowed by the caller's policies, or
    proved by a service certificate of the authority in pki_dir (services.core.access); the
    identity service's first start creates an administrator key. Every process of a cluster sets
    it, and shares pki_dir."""

    def check(self) -> None:
        """Refuse combinations of keys that cannot work; InvalidArgument names the key."""
        if self.auth and "identity" not in self.services and "identity" not in self.peers:
            raise InvalidArgument(
                "auth: keys are checked by the identity service: run it in this process "
                "(--services …,identity) or say where it is (peers.identity)"
            )

    @property
    def authority_dir(self) -> Path:
        return self.pki_dir or self.data_dir / "pki"

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
    for key in (*STRING_KEYS, *LIST_KEYS, *JSON_KEYS, *INT_KEYS, *BOOL_KEYS):
        value = env.get(f"OPENDEPLOY_{key.upper()}")
        if value:
            raw[key] = _from_environment(key, value)
    for service in SERVICE_NAMES:
        value = env.get(f"OPENDEPLOY_PEER_{service.upper()}")
        if value:
            raw.setdefault("peers", {})[service] = value
    return _from_mapping(raw)


def _from_environment(key: str, value: str) -> Any:
    name = f"OPENDEPLOY_{key.upper()}"
    if key in LIST_KEYS:
        return [item.strip() for item in value.split(",") if item.strip()]
    if key in JSON_KEYS:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{name}: invalid JSON ({exc.msg})") from exc
    if key in BOOL_KEYS:
        if value.lower() not in (*TRUE, *FALSE):
            raise InvalidArgument(f"{name} must be one of {', '.join((*TRUE, *FALSE))}")
        return value.lower() in TRUE
    return value


KNOWN_KEYS = {
    *STRING_KEYS,
    *LIST_KEYS,
    *JSON_KEYS,
    *INT_KEYS,
    *BOOL_KEYS,
    "services",
    "peers",
}


def _from_mapping(raw: dict[str, Any]) -> ServerConfig:
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise InvalidArgument(f"config: unknown key(s) {', '.join(unknown)}")
    config = ServerConfig()
    if "services" in raw:
        config.services = parse_services(raw["services"])
    for key in ("listen", "metrics_listen", "database_url", "git_base_url"):
        if key in raw:
            setattr(config, key, str(raw[key]))
    if raw.get("prometheus_url"):
        config.prometheus_url = _http_url("prometheus_url", raw["prometheus_url"])
    for key in ("data_dir", "pki_dir"):
        if key in raw:
            setattr(config, key, Path(str(raw[key])))
    if "peers" in raw:
        peers = raw["peers"]
        if not isinstance(peers, dict) or not set(peers) <= set(SERVICE_NAMES):
            raise InvalidArgument(f"config: peers must map {', '.join(SERVICE_NAMES)} to host:port")
        config.peers = {str(k): str(v) for k, v in peers.items()}
    for key in (
        "heartbeat_interval_seconds",
        "max_heartbeats_per_second",
        "command_ack_timeout_seconds",
        "command_grace_seconds",
        "shutdown_grace_seconds",
        "grpc_max_message_bytes",
        "grpc_max_concurrent_streams",
        "agent_certificate_seconds",
        "alarm_poll_seconds",
    ):
        if key in raw:
            setattr(config, key, _positive_int(key, raw[key]))
    for key in BOOL_KEYS:
        if key in raw:
            setattr(config, key, bool(raw[key]))
    if "provisioners" in raw:
        config.provisioners = _provisioners(raw["provisioners"])
    if "load_balancers" in raw:
        config.load_balancers = _load_balancers(raw["load_balancers"])
    _apply_bounds(config, raw)
    config.check()
    return config


def _http_url(key: str, value: Any) -> str:
    url = str(value).strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise InvalidArgument(f"config: {key} must be an http:// or https:// URL, got {value!r}")
    return url


def _apply_bounds(config: ServerConfig, raw: dict[str, Any]) -> None:
    """Bundle limits, Git transports and outbound address ranges."""
    try:
        config.bundle_limits = limits_from_mapping(raw, "config")
        if "git_allowed_schemes" in raw:
            config.git_allowed_schemes = check_schemes(raw["git_allowed_schemes"])
        check_url(config.git_base_url.rstrip("/") + "/owner/repo", SUPPORTED_SCHEMES)
    except ValueError as error:  # GitPolicyError is one too
        raise InvalidArgument(f"config: {error}") from None
    config.outbound = OutboundPolicy(
        denied=parse_networks(
            "outbound_denied_networks", raw.get("outbound_denied_networks", DEFAULT_DENIED_NETWORKS)
        ),
        allowed=parse_networks(
            "outbound_allowed_networks", raw.get("outbound_allowed_networks", [])
        ),
    )


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise InvalidArgument(f"config: {key} must be a positive integer")
    return int(value)


LOAD_BALANCER_KEYS = {
    "haproxy": {"admin_socket"},
    "elbv2": {"target_group_arn", "region", "endpoint_url"},
}


def _load_balancers(value: Any) -> dict[str, dict[str, dict[str, str]]]:
    """name → exactly one of {haproxy: {admin_socket}} or {elbv2: {target_group_arn, …}}."""
    if not isinstance(value, dict):
        raise InvalidArgument("config: load_balancers must map names to {haproxy} or {elbv2}")
    checked = {}
    for name, spec in value.items():
        if not isinstance(spec, dict) or len(spec) != 1 or not set(spec) <= set(LOAD_BALANCER_KEYS):
            raise InvalidArgument(
                f"config: load_balancers.{name} needs exactly one of haproxy or elbv2"
            )
        kind, settings = next(iter(spec.items()))
        if not isinstance(settings, dict) or not set(settings) <= LOAD_BALANCER_KEYS[kind]:
            takes = ", ".join(sorted(LOAD_BALANCER_KEYS[kind]))
            raise InvalidArgument(f"config: load_balancers.{name}.{kind} takes {takes}")
        required = "admin_socket" if kind == "haproxy" else "target_group_arn"
        if not settings.get(required):
            raise InvalidArgument(f"config: load_balancers.{name}.{kind}.{required} is required")
        checked[str(name)] = {kind: {str(k): str(v) for k, v in settings.items()}}
    return checked


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
