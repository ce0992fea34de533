"""The one error hierarchy of the services, and its mapping to gRPC status codes.

Domain code raises these; the server interceptor turns them into a gRPC status with the message,
and peer calls turn a peer's status back into the same class. Nothing matches on message text.
"""

from __future__ import annotations

import grpc
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class DeployError(Exception):
    """Base of every error a service reports to its caller; the message names the field or thing."""


class InvalidArgument(DeployError):
    """The request is malformed: a field is missing, out of range or of the wrong form."""


class NotFound(DeployError):
    """A named application, group, revision, deployment or instance does not exist."""


class AlreadyExists(DeployError):
    """Creating something whose name is taken."""


class FailedPrecondition(DeployError):
    """The request is well formed but the current state does not allow it."""


class InvalidTransition(FailedPrecondition):
    """A state machine was asked for a move its transition table does not allow."""


class ResourceExhausted(DeployError):
    """A request goes over a configured limit (bundle size, streams); the message names it."""


class Unavailable(DeployError):
    """A peer service or dependency cannot be reached right now; retrying may help."""


class Unauthenticated(DeployError):
    """The caller did not prove who it is: no credentials, a bad signature, an unknown key."""


class PermissionDenied(DeployError):
    """The caller is known but may not do this; the message names the action and resource."""


STATUS_BY_ERROR: dict[type[DeployError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    InvalidTransition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

ERROR_BY_STATUS: dict[grpc.StatusCode, type[DeployError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def status_for(error: DeployError) -> grpc.StatusCode:
    """The gRPC status code for a domain error (the most specific class in the table wins)."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return grpc.StatusCode.INTERNAL


def from_rpc_error(error: grpc.RpcError) -> DeployError:
    """Translate a peer's gRPC failure into the domain error it stands for."""
    code = error.code()
    cls = ERROR_BY_STATUS.get(code, Unavailable)
    return cls(error.details() or str(code))


FOREIGN_ERRORS: dict[type[BaseException], tuple[type[DeployError], str]] = {
    DataError: (
        InvalidArgument,
        "a value in the request cannot be stored (too long, out of range or not text)",
    ),
    PoolTimeout: (
        ResourceExhausted,
        "the server is saturated: no database connection came free in time; retry later",
    ),
}
"""Errors of libraries that stand for a clear answer: the caller sent something unusable (a
last line behind the servicers' own checks), or the server is saturated (which the caller may
retry, as an agent does) — never an internal error."""


def translate_foreign(error: BaseException) -> DeployError | None:
    """The domain error a library's error stands for, if it is one of FOREIGN_ERRORS."""
    for cls in type(error).__mro__:
        if cls in FOREIGN_ERRORS:
            kind, message = FOREIGN_ERRORS[cls]
            return kind(message)
    return None
