"""Channels to peer services, and the translation of their failures into domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from grpc import aio

from deploy import certproof
from deploy.backoff import RECONNECT_CHANNEL_OPTIONS
from services.core.config import ServerConfig
from services.core.errors import from_rpc_error
from services.core.pki import CA_CERT, service_identity

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    *RECONNECT_CHANNEL_OPTIONS,
]


def peer_channel(config: ServerConfig, service: str) -> aio.Channel:
    """A channel to `service`: over TLS, trusting the cluster's certificate authority, when
    the server uses TLS; proving each call with this process's service certificate when
    authentication is on."""
    address = config.peer_address(service)
    interceptors = (
        certproof.interceptors(
            lambda: service_identity(config.authority_dir, config.services).credential
        )
        if config.auth
        else None
    )
    if not config.tls:
        return aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=interceptors)
    authority = (config.authority_dir / CA_CERT).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=authority)
    return aio.secure_channel(
        address, credentials, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


@asynccontextmanager
async def peer_errors() -> AsyncIterator[None]:
    """Re-raise a peer's gRPC failure as the matching DeployError (NOT_FOUND → NotFound, …)."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
