"""The agent's configuration file (DESIGN §3: deploy-agent --config agent.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.download import FetchPolicy
from agent.errors import ConfigError
from deploy.bundlelimits import LIMIT_KEYS, limits_from_mapping
from deploy.endpoints import parse_endpoint
from deploy.gitpolicy import check_schemes

KNOWN_KEYS = {
    "server",
    "instance_name",
    "tags",
    "root_dir",
    "max_revisions",
    "install_prefix",
    "environment",
    "git_allowed_schemes",
    "fetch_timeout_seconds",
    "ca_file",
    "join_token",
    "metrics_listen",
    *LIMIT_KEYS,
}


@dataclass(frozen=True)
class AgentConfig:
    server: str
    """host:port of the fleet's AgentGateway (and the registry, for bundle downloads), reached
    over TLS; http://host:port in plaintext (deploy.endpoints)."""
    instance_name: str
    tags: dict[str, str] = field(default_factory=dict)
    """Applied when the instance registers itself on first contact."""
    root_dir: Path = Path("/opt/opendeploy-agent/deployment-root")
    max_revisions: int = 5
    """Deployment archives kept per deployment group (the last successful one is always kept)."""
    install_prefix: str = ""
    """Prefix for absolute appspec destinations; empty installs at the real paths."""
    environment: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for hook scripts."""
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    """Bundle limits, download timeout and Git schemes this host accepts."""
    ca_certificate: bytes = b""
    """PEM of the certificate authority the server's TLS certificate must chain to (read from
    `ca_file`); empty: the one received at enrolment, else the system's roots."""
    join_token: str = ""
    """Spent on the first start to enrol (agent.identity), when the host has no certificate."""
    metrics_listen: str = ""
    """host:port of the agent's Prometheus /metrics (port 0: any free one, logged); empty: no
    endpoint. Hooks are not told of it."""

    @property
    def identity_dir(self) -> Path:
        return self.root_dir / "identity"


def load_agent_config(path: Path) -> AgentConfig:
    """Read and validate the YAML file; ConfigError names the bad key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    for key in ("server", "instance_name"):
        if not raw.get(key):
            raise ConfigError(f"{path}: {key} is required")
    try:
        parse_endpoint(str(raw["server"]))
    except ValueError as error:
        raise ConfigError(f"{path}: server: {error}") from None
    max_revisions = raw.get("max_revisions", 5)
    if not isinstance(max_revisions, int) or max_revisions < 1:
        raise ConfigError(f"{path}: max_revisions must be an integer ≥ 1")
    return AgentConfig(
        server=str(raw["server"]),
        instance_name=str(raw["instance_name"]),
        tags=_string_map(path, "tags", raw.get("tags")),
        root_dir=Path(str(raw.get("root_dir") or AgentConfig.root_dir)).resolve(),
        max_revisions=max_revisions,
        install_prefix=str(Path(raw["install_prefix"]).resolve())
        if raw.get("install_prefix")
        else "",
        environment=_string_map(path, "environment", raw.get("environment")),
        fetch=_fetch_policy(path, raw),
        ca_certificate=_ca_certificate(path, raw.get("ca_file")),
        join_token=str(raw.get("join_token") or ""),
        metrics_listen=_listen(path, raw.get("metrics_listen")),
    )


def _listen(path: Path, value: Any) -> str:
    if not value:
        return ""
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{path}: metrics_listen must be host:port, got {value!r}")
    return str(value)


def _ca_certificate(path: Path, ca_file: Any) -> bytes:
    if not ca_file:
        return b""
    try:
        return Path(str(ca_file)).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: ca_file: {error.strerror}: {ca_file}") from None


def _fetch_policy(path: Path, raw: dict[str, Any]) -> FetchPolicy:
    try:
        limits = limits_from_mapping(raw, str(path))
        schemes = check_schemes(raw.get("git_allowed_schemes") or FetchPolicy.git_allowed_schemes)
    except ValueError as error:  # GitPolicyError is one too
        raise ConfigError(f"{path}: {error}") from None
    timeout = raw.get("fetch_timeout_seconds", FetchPolicy.timeout_seconds)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{path}: fetch_timeout_seconds must be a positive number")
    return FetchPolicy(limits=limits, timeout_seconds=float(timeout), git_allowed_schemes=schemes)


def _string_map(path: Path, key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping of names to values")
    return {str(k): str(v) for k, v in value.items()}
