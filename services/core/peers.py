"""Channels to peer services, and the translation of their failures into domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio

from deploy.backoff import RECONNECT_CHANNEL_OPTIONS
from services.core.access import SERVICE_CREDENTIAL, SERVICE_HEADER
from services.core.config import ServerConfig
from services.core.errors import from_rpc_error
from services.core.pki import CA_CERT

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
    the server uses TLS; presenting this process's service credential when authentication is
    on."""
    address = config.peer_address(service)
    interceptors = _service_credential() if config.auth else None
    if not config.tls:
        return aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=interceptors)
    authority = (config.authority_dir / CA_CERT).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=authority)
    return aio.secure_channel(
        address, credentials, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


def _with_credential(details: aio.ClientCallDetails) -> aio.ClientCallDetails:
    metadata = aio.Metadata(*(details.metadata or ()))
    metadata.add(SERVICE_HEADER, SERVICE_CREDENTIAL)
    return details._replace(metadata=metadata)


class _UnaryUnaryCredential(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_credential(details), request)


class _UnaryStreamCredential(aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_credential(details), request)


class _StreamUnaryCredential(aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_credential(details), requests)


class _StreamStreamCredential(aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_credential(details), requests)


def _service_credential() -> list[aio.ClientInterceptor]:
    """Interceptors adding the process's service credential to every call to a peer (one per
    call shape: a channel files each interceptor under the first shape it implements)."""
    return [
        _UnaryUnaryCredential(),
        _UnaryStreamCredential(),
        _StreamUnaryCredential(),
        _StreamStreamCredential(),
    ]


@asynccontextmanager
async def peer_errors() -> AsyncIterator[None]:
    """Re-raise a peer's gRPC failure as the matching DeployError (NOT_FOUND → NotFound, …)."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
