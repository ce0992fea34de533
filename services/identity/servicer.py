"""Identity's gRPC edge: validate, call the store, convert."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, TypeAlias

from grpc import aio

from deploy.v1 import identity_pb2, identity_pb2_grpc
from services.core.convert import audit_from_proto, audit_to_proto, time_from_proto
from services.core.errors import InvalidArgument, NotFound
from services.core.paging import page_of
from services.core.policy import parse_document
from services.identity.convert import (
    key_to_proto,
    policy_to_proto,
    user_to_proto,
)
from services.identity.domain import check_policy_name, check_user_name, policy_name_of
from services.identity.store import IdentityStore

Context: TypeAlias = aio.ServicerContext[Any, Any]
USERS_PAGE = 100


class IdentityServicer(identity_pb2_grpc.IdentityServicer):
    def __init__(self, store: IdentityStore) -> None:
        self._store = store

    async def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: Context
    ) -> identity_pb2.CreateUserResponse:
        user = await self._store.create_user(check_user_name("userName", request.user_name))
        return identity_pb2.CreateUserResponse(user=user_to_proto(user))

    async def DeleteUser(
        self, request: identity_pb2.DeleteUserRequest, context: Context
    ) -> identity_pb2.DeleteUserResponse:
        await self._store.delete_user(check_user_name("userName", request.user_name))
        return identity_pb2.DeleteUserResponse()

    async def ListUsers(
        self, request: identity_pb2.ListUsersRequest, context: Context
    ) -> identity_pb2.ListUsersResponse:
        users, token = page_of(
            await self._store.users(), request.next_token, request.max_items, USERS_PAGE
        )
        return identity_pb2.ListUsersResponse(
            users=[user_to_proto(u) for u in users], next_token=token
        )

    async def CreateAccessKey(
        self, request: identity_pb2.CreateAccessKeyRequest, context: Context
    ) -> identity_pb2.CreateAccessKeyResponse:
        key = await self._store.create_key(check_user_name("userName", request.user_name))
        return identity_pb2.CreateAccessKeyResponse(access_key=key_to_proto(key))

    async def DeleteAccessKey(
        self, request: identity_pb2.DeleteAccessKeyRequest, context: Context
    ) -> identity_pb2.DeleteAccessKeyResponse:
        await self._store.delete_key(
            check_user_name("userName", request.user_name), request.access_key_id
        )
        return identity_pb2.DeleteAccessKeyResponse()

    async def ListAccessKeys(
        self, request: identity_pb2.ListAccessKeysRequest, context: Context
    ) -> identity_pb2.ListAccessKeysResponse:
        keys = await self._store.keys(check_user_name("userName", request.user_name))
        return identity_pb2.ListAccessKeysResponse(access_keys=[key_to_proto(k) for k in keys])

    async def CreatePolicy(
        self, request: identity_pb2.CreatePolicyRequest, context: Context
    ) -> identity_pb2.CreatePolicyResponse:
        name = check_policy_name("policyName", request.policy_name)
        parse_document(request.policy_document)
        policy = await self._store.create_policy(name, request.policy_document)
        return identity_pb2.CreatePolicyResponse(policy=policy_to_proto(policy))

    async def ListPolicies(
        self, request: identity_pb2.ListPoliciesRequest, context: Context
    ) -> identity_pb2.ListPoliciesResponse:
        policies = await self._store.policies()
        return identity_pb2.ListPoliciesResponse(policies=[policy_to_proto(p) for p in policies])

    async def AttachUserPolicy(
        self, request: identity_pb2.AttachUserPolicyRequest, context: Context
    ) -> identity_pb2.AttachUserPolicyResponse:
        await self._store.attach(
            check_user_name("userName", request.user_name),
            policy_name_of("policyArn", request.policy_arn),
        )
        return identity_pb2.AttachUserPolicyResponse()

    async def DetachUserPolicy(
        self, request: identity_pb2.DetachUserPolicyRequest, context: Context
    ) -> identity_pb2.DetachUserPolicyResponse:
        await self._store.detach(
            check_user_name("userName", request.user_name),
            policy_name_of("policyArn", request.policy_arn),
        )
        return identity_pb2.DetachUserPolicyResponse()

    async def ListAttachedUserPolicies(
        self, request: identity_pb2.ListAttachedUserPoliciesRequest, context: Context
    ) -> identity_pb2.ListAttachedUserPoliciesResponse:
        policies = await self._store.attached(check_user_name("userName", request.user_name))
        return identity_pb2.ListAttachedUserPoliciesResponse(
            policies=[policy_to_proto(p) for p in policies]
        )

    async def ListAuditEvents(
        self, request: identity_pb2.ListAuditEventsRequest, context: Context
    ) -> identity_pb2.ListAuditEventsResponse:
        entries, ids, token = await self._store.audit_events(
            user_name=request.user_name,
            action=request.action,
            start=time_from_proto(request.start_time, "startTime")
            if request.HasField("start_time")
            else None,
            end=time_from_proto(request.end_time, "endTime")
            if request.HasField("end_time")
            else None,
            token=request.next_token,
            max_items=request.max_items,
        )
        return identity_pb2.ListAuditEventsResponse(
            events=[audit_to_proto(e, i) for e, i in zip(entries, ids, strict=True)],
            next_token=token,
        )

    async def Authenticate(
        self, request: identity_pb2.AuthenticateRequest, context: Context
    ) -> identity_pb2.AuthenticateResponse:
        if not re.fullmatch(r"\d{8}", request.day):
            raise InvalidArgument("day must be YYYYMMDD")
        principal = await self._store.principal(request.access_key_id, request.day)
        if principal is None:
            raise NotFound(f"access key {request.access_key_id!r} is not an active key")
        return identity_pb2.AuthenticateResponse(
            user_name=principal.user_name,
            signing_key=principal.signing_key,
            policy_documents=principal.documents,
        )

    async def RecordAuditEvent(
        self, request: identity_pb2.RecordAuditEventRequest, context: Context
    ) -> identity_pb2.RecordAuditEventResponse:
        await self._store.record(audit_from_proto(request.event))
        return identity_pb2.RecordAuditEventResponse()


def _time(
    request: identity_pb2.ListAuditEventsRequest,
    field: Literal["start_time", "end_time"],
    name: str,
) -> datetime | None:
    return time_from_proto(getattr(request, field), name) if request.HasField(field) else None
