"""The identity service as a process without it reaches it: to check access keys and to store
audit records (services.core.access.Authority, over gRPC)."""

from __future__ import annotations

import grpc
from grpc import aio

from deploy.v1 import identity_pb2, identity_pb2_grpc
from services.core.access import AuditEntry, Principal
from services.core.convert import audit_to_proto
from services.core.errors import from_rpc_error

TIMEOUT_SECONDS = 10.0


class RemoteAuthority:
    """Asks the identity service on every signed call (no cache: a deleted key stops working
    at once), as a service proving itself with its certificate (the channel's)."""

    def __init__(self, channel: aio.Channel) -> None:
        self._channel = channel
        self._stub = identity_pb2_grpc.IdentityStub(channel)

    async def principal(self, access_key_id: str, day: str) -> Principal | None:
        request = identity_pb2.AuthenticateRequest(access_key_id=access_key_id, day=day)
        try:
            answer = await self._stub.Authenticate(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_rpc_error(error) from error
        return Principal(
            answer.user_name, access_key_id, answer.signing_key, tuple(answer.policy_documents)
        )

    async def record(self, entry: AuditEntry) -> None:
        request = identity_pb2.RecordAuditEventRequest(event=audit_to_proto(entry, 0))
        try:
            await self._stub.RecordAuditEvent(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    async def close(self) -> None:
        await self._channel.close()
