"""The identity verbs, in IAM's shape: users, access keys, policies, and the audit log."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deploy.cli import render
from deploy.cli.values import every_page, parse_time, with_next_token
from deploy.client import DeployClient
from deploy.errors import ClientError
from deploy.v1 import identity_pb2

Result = dict[str, Any] | None
STATUS = {
    identity_pb2.ACCESS_KEY_STATUS_ACTIVE: "Active",
    identity_pb2.ACCESS_KEY_STATUS_INACTIVE: "Inactive",
}


def _user(message: identity_pb2.User) -> dict[str, Any]:
    return {
        "userName": message.user_name,
        "arn": message.arn,
        "createDate": render.time(message, "create_date"),
    }


def _key(message: identity_pb2.AccessKey) -> dict[str, Any]:
    shown = {
        "userName": message.user_name,
        "accessKeyId": message.access_key_id,
        "status": STATUS.get(message.status, "Inactive"),
        "createDate": render.time(message, "create_date"),
    }
    if message.secret_access_key:
        shown["secretAccessKey"] = message.secret_access_key
    return shown


def _policy(message: identity_pb2.Policy) -> dict[str, Any]:
    return {"policyName": message.policy_name, "arn": message.arn, "builtIn": message.built_in}


def create_user(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.CreateUserRequest(user_name=args.user_name)
    return {"user": _user(client.call(client.identity.CreateUser, request).user)}


def delete_user(client: DeployClient, args: argparse.Namespace) -> Result:
    """Delete a user with its access keys and policy attachments."""
    client.call(
        client.identity.DeleteUser, identity_pb2.DeleteUserRequest(user_name=args.user_name)
    )
    return None


def list_users(client: DeployClient, args: argparse.Namespace) -> Result:
    users: list[dict[str, Any]] = []
    request = identity_pb2.ListUsersRequest()
    while True:
        response = client.call(client.identity.ListUsers, request)
        users.extend(_user(u) for u in response.users)
        if not response.next_token:
            return {"users": users}
        request.next_token = response.next_token


def create_access_key(client: DeployClient, args: argparse.Namespace) -> Result:
    """Create an access key; its secret is printed now and never again."""
    request = identity_pb2.CreateAccessKeyRequest(user_name=args.user_name)
    return {"accessKey": _key(client.call(client.identity.CreateAccessKey, request).access_key)}


def delete_access_key(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.DeleteAccessKeyRequest(
        user_name=args.user_name, access_key_id=args.access_key_id
    )
    client.call(client.identity.DeleteAccessKey, request)
    return None


def list_access_keys(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.ListAccessKeysRequest(user_name=args.user_name)
    keys = client.call(client.identity.ListAccessKeys, request).access_keys
    return {"accessKeyMetadata": [_key(k) for k in keys]}


def create_policy(client: DeployClient, args: argparse.Namespace) -> Result:
    """Create a policy from a JSON document (or file://PATH, as the AWS CLI reads it)."""
    document = args.policy_document
    if document.startswith("file://"):
        path = Path(document.removeprefix("file://"))
        try:
            document = path.read_text()
        except OSError as error:
            raise ClientError(f"--policy-document: cannot read {path}: {error.strerror}") from None
    request = identity_pb2.CreatePolicyRequest(
        policy_name=args.policy_name, policy_document=document
    )
    return {"policy": _policy(client.call(client.identity.CreatePolicy, request).policy)}


def list_policies(client: DeployClient, args: argparse.Namespace) -> Result:
    response = client.call(client.identity.ListPolicies, identity_pb2.ListPoliciesRequest())
    return {"policies": [_policy(p) for p in response.policies]}


def attach_user_policy(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.AttachUserPolicyRequest(
        user_name=args.user_name, policy_arn=args.policy_arn
    )
    client.call(client.identity.AttachUserPolicy, request)
    return None


def detach_user_policy(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.DetachUserPolicyRequest(
        user_name=args.user_name, policy_arn=args.policy_arn
    )
    client.call(client.identity.DetachUserPolicy, request)
    return None


def list_attached_user_policies(client: DeployClient, args: argparse.Namespace) -> Result:
    request = identity_pb2.ListAttachedUserPoliciesRequest(user_name=args.user_name)
    policies = client.call(client.identity.ListAttachedUserPolicies, request).policies
    return {
        "attachedPolicies": [{"policyName": p.policy_name, "policyArn": p.arn} for p in policies]
    }


def list_audit_events(client: DeployClient, args: argparse.Namespace) -> Result:
    """Mutating calls, newest first: who, action, resource, result, time, source address."""
    request = identity_pb2.ListAuditEventsRequest(
        user_name=args.user_name or "",
        action=args.action or "",
        next_token=args.starting_token or "",
    )
    for flag, field in (("--start-time", "start_time"), ("--end-time", "end_time")):
        value = getattr(args, field)
        if value:
            getattr(request, field).FromDatetime(parse_time(flag, value))
    events, token = every_page(
        lambda r: client.call(client.identity.ListAuditEvents, r),
        request,
        "events",
        args.max_items,
    )
    return with_next_token({"auditEvents": [_event(e) for e in events]}, token)


def _event(message: identity_pb2.AuditEvent) -> dict[str, Any]:
    return {
        "eventId": message.event_id,
        "eventTime": render.time(message, "event_time"),
        "userName": message.user_name,
        "accessKeyId": message.access_key_id,
        "action": message.action,
        "resource": message.resource,
        "result": message.result,
        "sourceAddress": message.source_address,
    }
