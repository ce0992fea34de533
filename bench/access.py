"""Reaching a deploy-server as a user does (TLS and authentication are on by default): over
TLS trusting the cluster's authority, every call signed with the administrator key the identity
service wrote on its first start; agents enrol with a counted join token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.client import DeployClient
from deploy.credentials import load_credentials
from deploy.v1 import common_pb2, fleet_pb2


def serving(address: str, ca_file: Path) -> bool:
    """The server at `address` answers its health check over TLS."""
    if not ca_file.exists():
        return False  # the server creates its authority first
    credentials = grpc.ssl_channel_credentials(ca_file.read_bytes())
    with grpc.secure_channel(address, credentials) as channel:
        try:
            status = (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=1)
                .status
            )
        except grpc.RpcError:
            return False
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


TOKEN_USES = 1000
"""The most agents one join token may enrol."""


@dataclass(frozen=True)
class Admin:
    """The cluster's administrator: its authority (pki_dir) and the identity service's data
    directory, where the key is."""

    pki_dir: Path
    identity_data_dir: Path

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.pem"

    def wait_for_key(self, wait: Callable[[Callable[[], bool], float, str], None]) -> None:
        wait(self._key_file.exists, 30, "the administrator key")

    @property
    def _key_file(self) -> Path:
        return self.identity_data_dir / "admin-credentials"

    def client(self, address: str) -> DeployClient:
        credentials = load_credentials(
            None, {"DEPLOY_SHARED_CREDENTIALS_FILE": str(self._key_file)}
        )
        return DeployClient(address, str(self.ca_file), credentials)

    def cli_env(self, address: str) -> dict[str, str]:
        """The environment the `deploy` CLI needs to act as this administrator."""
        return {
            "DEPLOY_ENDPOINT": address,
            "DEPLOY_CA_FILE": str(self.ca_file),
            "DEPLOY_SHARED_CREDENTIALS_FILE": str(self._key_file),
        }

    def join_tokens(self, address: str, tags: dict[str, str], agents: int) -> list[str]:
        """Tokens that enrol `agents` agents between them (a token enrols 1,000 at most)."""
        return [
            self.join_token(address, tags, min(TOKEN_USES, agents - first))
            for first in range(0, agents, TOKEN_USES)
        ]

    def join_token(self, address: str, tags: dict[str, str], uses: int) -> str:
        """A token that enrols `uses` agents, registering each with `tags`."""
        with self.client(address) as client:
            return str(
                client.call(
                    client.fleet.CreateJoinToken,
                    fleet_pb2.CreateJoinTokenRequest(
                        tags=[common_pb2.Tag(key=k, value=v) for k, v in tags.items()],
                        max_uses=uses,
                        expires_in_seconds=3600,
                    ),
                ).join_token
            )
