"""Channels to peer services, and the translation of their failures into domain errors."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio

from deploy import certproof, signing
from deploy.backoff import RECONNECT_CHANNEL_OPTIONS
from services.core.access import payload_hash
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
    interceptors = _proofs(config) if config.auth else None
    if not config.tls:
        return aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=interceptors)
    authority = (config.authority_dir / CA_CERT).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=authority)
    return aio.secure_channel(
        address, credentials, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


class _Proof:
    """Proves each call to a peer with the process's service certificate (deploy.certproof)."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config

    def details(self, details: aio.ClientCallDetails, request: Any) -> aio.ClientCallDetails:
        identity = service_identity(self._config.authority_dir, self._config.services)
        body = payload_hash(request) if request is not None else signing.UNSIGNED_PAYLOAD
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        now = datetime.datetime.now(datetime.UTC)
        metadata = aio.Metadata(*(details.metadata or ()))
        for key, value in certproof.prove(
            identity.key, identity.certificate_der, method, body, now
        ):
            metadata.add(key, value)
        return details._replace(metadata=metadata)


class _UnaryUnaryProof(_Proof, aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.details(details, request), request)


class _UnaryStreamProof(_Proof, aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self.details(details, request), request)


class _StreamUnaryProof(_Proof, aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.details(details, None), requests)


class _StreamStreamProof(_Proof, aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self.details(details, None), requests)


def _proofs(config: ServerConfig) -> list[aio.ClientInterceptor]:
    """One interceptor per call shape: a channel files each interceptor under the first shape
    it implements."""
    return [
        _UnaryUnaryProof(config),
        _UnaryStreamProof(config),
        _StreamUnaryProof(config),
        _StreamStreamProof(config),
    ]


@asynccontextmanager
async def peer_errors() -> AsyncIterator[None]:
    """Re-raise a peer's gRPC failure as the matching DeployError (NOT_FOUND → NotFound, …)."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
