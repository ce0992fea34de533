"""Identity domain objects ↔ deploy.v1.identity messages."""

from __future__ import annotations

from deploy.v1 import identity_pb2
from services.core.convert import timestamp
from services.identity.domain import ACTIVE, AccessKey, Policy, User


def user_to_proto(user: User) -> identity_pb2.User:
    return identity_pb2.User(
        user_name=user.name, arn=user.arn, create_date=timestamp(user.created_at)
    )


def key_to_proto(key: AccessKey) -> identity_pb2.AccessKey:
    return identity_pb2.AccessKey(
        user_name=key.user_name,
        access_key_id=key.key_id,
        secret_access_key=key.secret,
        status=identity_pb2.ACCESS_KEY_STATUS_ACTIVE
        if key.status == ACTIVE
        else identity_pb2.ACCESS_KEY_STATUS_INACTIVE,
        create_date=timestamp(key.created_at),
    )


def policy_to_proto(policy: Policy) -> identity_pb2.Policy:
    return identity_pb2.Policy(
        policy_name=policy.name, arn=policy.arn, document=policy.document, built_in=policy.built_in
    )
