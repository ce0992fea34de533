"""Channels to peer services, and the translation of their failures into domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from grpc import aio

from deploy.backoff import RECONNECT_CHANNEL_OPTIONS
from services.core.errors import from_rpc_error

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    *RECONNECT_CHANNEL_OPTIONS,
]


def open_channel(address: str) -> aio.Channel:
    """An insecure channel to a peer on the same trusted network (TLS comes with auth, later)."""
    return aio.insecure_channel(address, options=CHANNEL_OPTIONS)


@asynccontextmanager
async def peer_errors() -> AsyncIterator[None]:
    """Re-raise a peer's gRPC failure as the matching DeployError (NOT_FOUND → NotFound, …)."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
