"""The orchestrator's domain: deployment groups, deployments, targets and lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.core.diagnostics import Diagnostics
from services.core.revision import RevisionLocation
from services.core.tags import TagFilter
from services.orchestrator.states import DeploymentStatus, EventStatus, TargetStatus


class FileExistsBehavior(StrEnum):
    DISALLOW = "DISALLOW"
    OVERWRITE = "OVERWRITE"
    RETAIN = "RETAIN"


class DeploymentErrorCode(StrEnum):
    HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
    HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
    NO_INSTANCES = "NO_INSTANCES"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MANUAL_STOP = "MANUAL_STOP"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True)
class DeploymentGroup:
    id: str
    application_name: str
    name: str
    config_name: str
    tag_filters: tuple[TagFilter, ...]
    created_at: datetime
    tag_set: tuple[tuple[TagFilter, ...], ...] = ()
    """Groups of filters an instance must all match (any filter within a group)."""


@dataclass(frozen=True)
class ErrorInformation:
    code: DeploymentErrorCode
    message: str


@dataclass(frozen=True)
class LifecycleEvent:
    name: str
    status: EventStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


@dataclass(frozen=True)
class Target:
    deployment_id: str
    instance_name: str
    status: TargetStatus
    updated_at: datetime
    events: tuple[LifecycleEvent, ...]


@dataclass(frozen=True)
class Deployment:
    id: str
    application_name: str
    group_name: str
    group_id: str
    config_name: str
    minimum_healthy: int
    """M, fixed at creation from the config and the number of instances."""
    status: DeploymentStatus
    revision: RevisionLocation
    description: str
    creator: str
    file_exists_behavior: FileExistsBehavior | None
    ignore_application_stop_failures: bool
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: ErrorInformation | None = None


@dataclass(frozen=True)
class DeploymentRequest:
    """A validated CreateDeployment: what to deploy where, before the orchestrator resolves it."""

    application_name: str
    group_name: str
    revision: RevisionLocation
    config_name: str
    description: str
    file_exists_behavior: FileExistsBehavior | None
    ignore_application_stop_failures: bool


@dataclass(frozen=True)
class DeploymentQuery:
    """ListDeployments: which deployments, newest first, one page at a time."""

    application_name: str = ""
    group_name: str = ""
    statuses: tuple[DeploymentStatus, ...] = ()
    created_from: datetime | None = None
    """Inclusive lower bound of the create time; None: none."""
    created_to: datetime | None = None
    """Inclusive upper bound of the create time; None: none."""
    after: tuple[datetime, str] | None = None
    """(create time, id) of the last deployment of the previous page."""
    limit: int = 100
