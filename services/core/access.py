"""Who is calling, and may they: authentication and authorization of every RPC.

Every method has a rule (`RULES`): the action it performs (CodeDeploy's operation name,
`deploy:CreateDeployment`; `iam:CreateUser` for the identity service) and the resources it acts
on (ARNs built from the request, or from the deployment a deployment id names). Callers are:
- users, who sign each call with an access key (deploy.signing) and are allowed what their
  policies allow (services.core.policy);
- OpenDeploy's own services calling their peers, with a certificate of the cluster's authority
  naming the services of their process (deploy.certproof); internal methods (the fleet's
  dispatch, the traffic service's allow/block/weights, the identity service's key lookups) answer
  only the services that need them, and refuse users;
- agents, which enrol with a join token (the one method open to anyone) and then prove their
  calls with a certificate naming their instance, which the fleet takes their name from.
A method without a rule is refused to everybody: a new RPC is closed until it is given one.
"""

from __future__ import annotations

import datetime
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509

from deploy import certproof, signing
from services.core.errors import PermissionDenied, Unauthenticated
from services.core.policy import Statement, allowed, parse_document

log = logging.getLogger("opendeploy.audit")

DEPLOY_ARN = "arn:opendeploy:deploy::"
IAM_ARN = "arn:opendeploy:iam::"
PEER_SERVICES = frozenset({"registry", "fleet", "orchestrator", "traffic"})
"""The services that ask the identity service about keys and send it audit records."""
READ_PREFIXES = ("Get", "List", "BatchGet", "Watch", "Download")


class Audience(enum.Enum):
    USERS = "users"
    """Users (by policy) and services."""
    SERVICES = "services"
    """The OpenDeploy services named in the rule's `callers` only."""
    AGENTS = "agents"
    """Enrolled agents, proving their calls with their instance's certificate."""
    ANYONE = "anyone"
    """No caller identity: the request carries its own credential (a join token)."""


Resources = Callable[[Any], list[str]]


def everything(request: Any) -> list[str]:
    """The resource of calls that act on no one thing (lists, uploads)."""
    return ["*"]


@dataclass(frozen=True)
class Rule:
    action: str
    audience: Audience = Audience.USERS
    resources: Resources = everything
    deployment_field: str = ""
    """When set, the resource is the deployment group of the deployment this field names."""
    callers: frozenset[str] = frozenset()
    """For an internal method: the services that may call it."""

    @property
    def mutating(self) -> bool:
        return not self.action.partition(":")[2].startswith(READ_PREFIXES)


def application_arn(name: str) -> str:
    return f"{DEPLOY_ARN}application:{name}"


def group_arn(application: str, group: str) -> str:
    return f"{DEPLOY_ARN}deploymentgroup:{application}/{group}"


def user_arn(name: str) -> str:
    return f"{IAM_ARN}user/{name}"


def policy_arn(name: str) -> str:
    return f"{IAM_ARN}policy/{name}"


def _one(build: Callable[[str], str], name: str) -> Resources:
    return lambda request: [build(getattr(request, name))]


def _kind(kind: str, name: str) -> Resources:
    return lambda request: [f"{DEPLOY_ARN}{kind}:{getattr(request, name)}"]


def _instances(name: str) -> Resources:
    return lambda request: [f"{DEPLOY_ARN}instance:{n}" for n in getattr(request, name)] or ["*"]


def _group(application: str, group: str) -> Resources:
    return lambda request: [group_arn(getattr(request, application), getattr(request, group))]


def _groups_listed(request: Any) -> list[str]:
    app, group = request.application_name or "*", request.deployment_group_name or "*"
    return [group_arn(app, group)]


def _rules() -> dict[str, Rule]:
    app = _one(application_arn, "application_name")
    group = _group("application_name", "deployment_group_name")
    config = _kind("deploymentconfig", "deployment_config_name")
    instance = _kind("instance", "instance_name")
    target_group = _kind("targetgroup", "name")
    user = _one(user_arn, "user_name")
    orchestrator = frozenset({"orchestrator"})
    callers = {
        "/deploy.v1.Fleet/": orchestrator,
        "/deploy.v1.TrafficRouter/": orchestrator,
        "/deploy.v1.Identity/": PEER_SERVICES,
    }
    by_service: dict[str, dict[str, tuple[Resources | str | None, Audience]]] = {
        "RevisionRegistry": {
            "CreateApplication": (app, Audience.USERS),
            "GetApplication": (app, Audience.USERS),
            "ListApplications": (None, Audience.USERS),
            "UploadBundle": (None, Audience.USERS),
            "DownloadBundle": (None, Audience.AGENTS),
            "RegisterApplicationRevision": (app, Audience.USERS),
            "GetApplicationRevision": (app, Audience.USERS),
            "ListApplicationRevisions": (app, Audience.USERS),
            "BatchGetApplicationRevisions": (app, Audience.USERS),
        },
        "Orchestrator": {
            "CreateDeploymentConfig": (config, Audience.USERS),
            "GetDeploymentConfig": (config, Audience.USERS),
            "DeleteDeploymentConfig": (config, Audience.USERS),
            "ListDeploymentConfigs": (None, Audience.USERS),
            "CreateDeploymentGroup": (group, Audience.USERS),
            "GetDeploymentGroup": (group, Audience.USERS),
            "ListDeploymentGroups": (app, Audience.USERS),
            "DeleteDeploymentGroup": (group, Audience.USERS),
            "UpdateDeploymentGroup": (
                _group("application_name", "current_deployment_group_name"),
                Audience.USERS,
            ),
            "CreateDeployment": (group, Audience.USERS),
            "GetDeployment": ("deployment_id", Audience.USERS),
            "StopDeployment": ("deployment_id", Audience.USERS),
            "ContinueDeployment": ("deployment_id", Audience.USERS),
            "ListDeployments": (_groups_listed, Audience.USERS),
            "ListDeploymentTargets": ("deployment_id", Audience.USERS),
            "GetDeploymentTarget": ("deployment_id", Audience.USERS),
            "WatchDeployment": ("deployment_id", Audience.USERS),
            "WatchDeploymentLogs": ("deployment_id", Audience.USERS),
        },
        "Fleet": {
            "RegisterOnPremisesInstance": (instance, Audience.USERS),
            "GetOnPremisesInstance": (instance, Audience.USERS),
            "ListOnPremisesInstances": (None, Audience.USERS),
            "DeregisterOnPremisesInstance": (instance, Audience.USERS),
            "AddTagsToOnPremisesInstances": (_instances("instance_names"), Audience.USERS),
            "RemoveTagsFromOnPremisesInstances": (_instances("instance_names"), Audience.USERS),
            "DispatchCommand": (None, Audience.SERVICES),
            "DispatchCommands": (None, Audience.SERVICES),
            "WatchCommandUpdates": (None, Audience.SERVICES),
            "CancelCommands": (None, Audience.SERVICES),
            "WatchInstanceChanges": (None, Audience.SERVICES),
            "WatchCommandOutput": (None, Audience.SERVICES),
            "CreateJoinToken": (None, Audience.USERS),
            "Enroll": (None, Audience.ANYONE),
            "RenewCertificate": (None, Audience.AGENTS),
        },
        "AgentGateway": {"Connect": (None, Audience.AGENTS)},
        "TrafficRouter": {
            "CreateTargetGroup": (target_group, Audience.USERS),
            "DeleteTargetGroup": (target_group, Audience.USERS),
            "ListTargetGroups": (None, Audience.USERS),
            "GetTargetGroup": (target_group, Audience.USERS),
            "SetTargetAddress": (_kind("targetgroup", "target_group_name"), Audience.USERS),
            "AllowTraffic": (None, Audience.SERVICES),
            "BlockTraffic": (None, Audience.SERVICES),
            "SetWeights": (None, Audience.SERVICES),
        },
        "Identity": {
            "CreateUser": (user, Audience.USERS),
            "DeleteUser": (user, Audience.USERS),
            "ListUsers": (None, Audience.USERS),
            "CreateAccessKey": (user, Audience.USERS),
            "DeleteAccessKey": (user, Audience.USERS),
            "ListAccessKeys": (user, Audience.USERS),
            "CreatePolicy": (_one(policy_arn, "policy_name"), Audience.USERS),
            "ListPolicies": (None, Audience.USERS),
            "AttachUserPolicy": (user, Audience.USERS),
            "DetachUserPolicy": (user, Audience.USERS),
            "ListAttachedUserPolicies": (user, Audience.USERS),
            "ListAuditEvents": (None, Audience.USERS),
            "Authenticate": (None, Audience.SERVICES),
            "RecordAuditEvent": (None, Audience.SERVICES),
        },
    }
    rules: dict[str, Rule] = {}
    for service, methods in by_service.items():
        prefix = "iam" if service == "Identity" else "deploy"
        path = f"/deploy.v1.{service}/"
        for method, (resources, audience) in methods.items():
            rules[path + method] = Rule(
                f"{prefix}:{method}",
                audience,
                resources if callable(resources) else everything,
                resources if isinstance(resources, str) else "",
                callers[path] if audience is Audience.SERVICES else frozenset(),
            )
    return rules


RULES = _rules()


@dataclass(frozen=True)
class Principal:
    """A user as one of its access keys presents it on one day."""

    user_name: str
    access_key_id: str
    signing_key: bytes
    """The key's signing key for the day (deploy.signing.signing_key), never the secret."""
    documents: tuple[str, ...]
    """The user's policy documents."""

    @property
    def statements(self) -> tuple[Statement, ...]:
        return tuple(s for d in self.documents for s in parse_document(d))


@dataclass(frozen=True)
class AuditEntry:
    time: datetime.datetime
    user_name: str
    access_key_id: str
    action: str
    resource: str
    result: str
    source_address: str


class Authority(Protocol):
    """What the gate needs of the identity service."""

    async def principal(self, access_key_id: str, day: str) -> Principal | None:
        """The active key's user, signing key for `day` and policies, or None."""

    async def record(self, entry: AuditEntry) -> None:
        """Store one audit entry."""


DeploymentLocator = Callable[[str], Awaitable[tuple[str, str] | None]]
"""A deployment id → (application, deployment group), None when there is no such deployment."""


@dataclass
class Admission:
    """One call as the gate saw it: who, what, on which resources."""

    rule: Rule
    principal: Principal | None = None
    services: frozenset[str] = frozenset()
    """The services a certificate proved the caller runs."""
    instance: str | None = None
    """The instance whose agent a certificate proved the caller to be."""
    resources: Sequence[str] = ()
    refused: PermissionDenied | None = None
    """Why an authenticated caller may not make this call (raised after the admission is kept,
    so that refused calls are audited too)."""

    @property
    def audited(self) -> bool:
        return self.principal is not None and self.rule.mutating


class Gate:
    """Authenticates and authorizes calls for the server interceptor, and writes the audit."""

    def __init__(
        self,
        authority: Authority,
        certificates: x509.Certificate,
        locate_deployment: DeploymentLocator | None,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        """`certificates`: the cluster's authority, which service (and, later, agent)
        certificates must chain to; `locate_deployment`: where this process runs the
        orchestrator."""
        self._authority = authority
        self._certificates = certificates
        self._locate = locate_deployment
        self._now = now

    async def admit(
        self, method: str, request: Any, metadata: Mapping[str, str | bytes]
    ) -> Admission:
        """Who calls `method` with `request` (None for a client stream): Unauthenticated when
        they do not prove it; an admission with `refused` set when they may not."""
        rule = RULES.get(method)
        if rule is None:
            raise PermissionDenied(f"{method} is not open to any caller")
        admission = Admission(rule)
        if rule.audience is Audience.ANYONE:
            return admission
        body = None if request is None else signing.message_hash(request)
        if certproof.CERTIFICATE in metadata:
            return self._proved(admission, method, body, metadata)
        if rule.audience is Audience.AGENTS:
            raise Unauthenticated(
                "agents prove their calls with their certificate: enrol with a join token first"
            )
        text = {k: v for k, v in metadata.items() if isinstance(v, str)}
        admission.principal = await self._authenticate(method, body, text)
        user = admission.principal.user_name
        if rule.audience is Audience.SERVICES:
            admission.refused = PermissionDenied(
                f"{rule.action} is for OpenDeploy's services only, not user {user}"
            )
            return admission
        admission.resources = await self._resources(rule, request)
        for resource in admission.resources:
            if not allowed(admission.principal.statements, rule.action, resource):
                admission.refused = PermissionDenied(
                    f"user {user} is not allowed to {rule.action} on {resource}"
                )
        return admission

    def _proved(
        self,
        admission: Admission,
        method: str,
        body: str | None,
        metadata: Mapping[str, str | bytes],
    ) -> Admission:
        """A call proved by a certificate: a service's, or an enrolled agent's."""
        try:
            holder = certproof.check(metadata, self._certificates, method, body, self._now())
        except certproof.ProofError as error:
            raise Unauthenticated(str(error)) from None
        rule = admission.rule
        admission.services = frozenset(holder.named("service"))
        instances = holder.named("instance")
        if len(instances) == 1 and not admission.services:
            admission.instance = instances.pop()
            if rule.audience is not Audience.AGENTS:
                admission.refused = PermissionDenied(
                    f"{rule.action} is not for agents (instance {admission.instance})"
                )
        elif not admission.services or instances:
            raise Unauthenticated("the certificate names no OpenDeploy service or instance")
        elif rule.audience is Audience.SERVICES and not admission.services & rule.callers:
            admission.refused = PermissionDenied(
                f"{rule.action} answers the {', '.join(sorted(rule.callers))} service(s) only"
            )
        return admission

    async def audit(self, admission: Admission, result: str, source: str) -> None:
        """Record a user's mutating call (refused ones too) and log it as a JSON line."""
        if not admission.audited or admission.principal is None:
            return
        entry = AuditEntry(
            time=self._now(),
            user_name=admission.principal.user_name,
            access_key_id=admission.principal.access_key_id,
            action=admission.rule.action,
            resource=",".join(admission.resources) or "*",
            result=result,
            source_address=source,
        )
        log.info("audit", extra={"fields": {k: str(v) for k, v in vars(entry).items()}})
        try:
            await self._authority.record(entry)
        except Exception:
            log.exception("the audit entry could not be stored")

    async def _authenticate(
        self, method: str, body: str | None, metadata: Mapping[str, str]
    ) -> Principal:
        try:
            signed = signing.parse(metadata)
        except signing.SignatureError as error:
            raise Unauthenticated(str(error)) from None
        if body is not None and signed.payload_hash != body:
            raise Unauthenticated("the request does not match its signed hash")
        principal = await self._authority.principal(signed.access_key_id, signed.day)
        if principal is None:
            raise Unauthenticated(f"access key {signed.access_key_id} is not valid")
        wrong = signing.verify(signed, principal.signing_key, method, self._now())
        if wrong is not None:
            raise Unauthenticated(wrong)
        return principal

    async def _resources(self, rule: Rule, request: Any) -> list[str]:
        if request is None:
            return ["*"]
        if not rule.deployment_field:
            return rule.resources(request)
        located = None
        if self._locate is not None:
            located = await self._locate(getattr(request, rule.deployment_field))
        return [group_arn(*located) if located else group_arn("*", "*")]


CALLER: ContextVar[Admission | None] = ContextVar("opendeploy_caller", default=None)
"""The admission of the call being served (set by the server interceptor; None when
authentication is off)."""


def calling_instance() -> str | None:
    """The instance whose agent's certificate proved the current call, if one did."""
    admission = CALLER.get()
    return admission.instance if admission is not None else None
