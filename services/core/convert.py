"""Conversions for shared messages: common.proto's revisions, tags and timestamps, and the
audit records every service sends the identity service."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from deploy.v1 import common_pb2, identity_pb2
from services.core.access import AuditEntry
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.errors import InvalidArgument
from services.core.revision import BundleType, RevisionLocation, RevisionType
from services.core.tags import Tag, TagFilter, TagFilterType

_REVISION_TYPES = {
    common_pb2.REVISION_TYPE_REGISTRY: RevisionType.REGISTRY,
    common_pb2.REVISION_TYPE_S3: RevisionType.S3,
    common_pb2.REVISION_TYPE_GITHUB: RevisionType.GITHUB,
}
_BUNDLE_TYPES = {
    common_pb2.BUNDLE_TYPE_ZIP: BundleType.ZIP,
    common_pb2.BUNDLE_TYPE_TAR: BundleType.TAR,
    common_pb2.BUNDLE_TYPE_TGZ: BundleType.TGZ,
}
_TAG_FILTER_TYPES = {
    common_pb2.TAG_FILTER_TYPE_KEY_ONLY: TagFilterType.KEY_ONLY,
    common_pb2.TAG_FILTER_TYPE_VALUE_ONLY: TagFilterType.VALUE_ONLY,
    common_pb2.TAG_FILTER_TYPE_KEY_AND_VALUE: TagFilterType.KEY_AND_VALUE,
}


K = TypeVar("K")
V = TypeVar("V")


def _inverse(table: dict[K, V]) -> dict[V, K]:
    return {v: k for k, v in table.items()}


def enum_from_proto(table: Mapping[Any, int], value: int, field: str) -> Any:
    """The member a table maps to the wire's number `value`; InvalidArgument (naming `field`)
    for a number it does not know."""
    for key, number in table.items():
        if number == value:
            return key
    raise InvalidArgument(f"{field}: unknown value {value}")


def bundle_type_from_proto(value: int, field: str) -> BundleType:
    try:
        return _BUNDLE_TYPES[value]  # type: ignore[index]
    except KeyError:
        raise InvalidArgument(f"{field} is required: zip, tar or tgz") from None


def bundle_type_to_proto(value: BundleType) -> common_pb2.BundleType.ValueType:
    return _inverse(_BUNDLE_TYPES)[value]


def revision_from_proto(message: common_pb2.RevisionLocation) -> RevisionLocation:
    """Domain revision from its message; raises InvalidArgument naming the missing field."""
    kind = _REVISION_TYPES.get(message.revision_type)
    if kind is None:
        raise InvalidArgument("revision.revisionType is required: Registry, S3 or GitHub")
    if kind is RevisionType.REGISTRY:
        loc = message.registry_location
        return RevisionLocation(
            kind,
            digest=loc.digest,
            bundle_type=bundle_type_from_proto(
                loc.bundle_type, "revision.registryLocation.bundleType"
            ),
        )
    if kind is RevisionType.S3:
        s3 = message.s3_location
        return RevisionLocation(
            kind,
            bucket=s3.bucket,
            key=s3.key,
            version=s3.version,
            etag=s3.etag,
            digest=s3.digest,
            bundle_type=bundle_type_from_proto(s3.bundle_type, "revision.s3Location.bundleType"),
        )
    gh = message.github_location
    return RevisionLocation(
        kind,
        repository=gh.repository,
        commit_id=gh.commit_id,
        digest=gh.digest,
        clone_url=gh.clone_url,
    )


def revision_to_proto(revision: RevisionLocation) -> common_pb2.RevisionLocation:
    message = common_pb2.RevisionLocation(
        revision_type=_inverse(_REVISION_TYPES)[revision.revision_type]
    )
    if revision.revision_type is RevisionType.REGISTRY:
        message.registry_location.digest = revision.digest
        message.registry_location.bundle_type = bundle_type_to_proto(revision.bundle_type)
    elif revision.revision_type is RevisionType.S3:
        message.s3_location.CopyFrom(
            common_pb2.S3Location(
                bucket=revision.bucket,
                key=revision.key,
                version=revision.version,
                etag=revision.etag,
                digest=revision.digest,
                bundle_type=bundle_type_to_proto(revision.bundle_type),
            )
        )
    else:
        message.github_location.repository = revision.repository
        message.github_location.commit_id = revision.commit_id
        message.github_location.digest = revision.digest
        message.github_location.clone_url = revision.clone_url
    return message


def tag_from_proto(message: common_pb2.Tag) -> Tag:
    return Tag(message.key, message.value)


def tag_to_proto(tag: Tag) -> common_pb2.Tag:
    return common_pb2.Tag(key=tag.key, value=tag.value)


def tag_filter_from_proto(message: common_pb2.TagFilter, field: str) -> TagFilter:
    kind = _TAG_FILTER_TYPES.get(message.type)
    if kind is None:
        raise InvalidArgument(f"{field}.Type is required: KEY_ONLY, VALUE_ONLY or KEY_AND_VALUE")
    return TagFilter(message.key, message.value, kind)


def tag_filter_to_proto(tag_filter: TagFilter) -> common_pb2.TagFilter:
    return common_pb2.TagFilter(
        key=tag_filter.key,
        value=tag_filter.value,
        type=_inverse(_TAG_FILTER_TYPES)[tag_filter.type],
    )


def timestamp(value: datetime | None) -> Timestamp | None:
    """A Timestamp message, or None for an unset time (so the field stays unset)."""
    if value is None:
        return None
    message = Timestamp()
    message.FromDatetime(value)  # an aware moment is converted; every stored one is (UTC)
    return message


_ERROR_CODES = {
    common_pb2.LIFECYCLE_ERROR_CODE_SUCCESS: ErrorCode.SUCCESS,
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_MISSING: ErrorCode.SCRIPT_MISSING,
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_NOT_EXECUTABLE: ErrorCode.SCRIPT_NOT_EXECUTABLE,
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_TIMED_OUT: ErrorCode.SCRIPT_TIMED_OUT,
    common_pb2.LIFECYCLE_ERROR_CODE_SCRIPT_FAILED: ErrorCode.SCRIPT_FAILED,
    common_pb2.LIFECYCLE_ERROR_CODE_UNKNOWN_ERROR: ErrorCode.UNKNOWN_ERROR,
    common_pb2.LIFECYCLE_ERROR_CODE_INVALID_BUNDLE: ErrorCode.INVALID_BUNDLE,
    common_pb2.LIFECYCLE_ERROR_CODE_INVALID_APPSPEC: ErrorCode.INVALID_APPSPEC,
    common_pb2.LIFECYCLE_ERROR_CODE_INSTALL_FAILED: ErrorCode.INSTALL_FAILED,
    common_pb2.LIFECYCLE_ERROR_CODE_AGENT_ISSUE: ErrorCode.AGENT_ISSUE,
    common_pb2.LIFECYCLE_ERROR_CODE_TIMEOUT: ErrorCode.TIMEOUT,
}


DIAGNOSTIC_LIMITS = {"script_name": 512, "message": 2048, "log_tail": 4096}
"""Characters kept of what an agent reports (the log tail keeps its end): a report is never
refused, but a hostile or broken agent cannot store megabytes per event."""


def diagnostics_from_proto(message: common_pb2.Diagnostics) -> Diagnostics:
    return Diagnostics(
        error_code=_ERROR_CODES.get(message.error_code),
        script_name=_bounded(message.script_name, DIAGNOSTIC_LIMITS["script_name"]),
        message=_bounded(message.message, DIAGNOSTIC_LIMITS["message"]),
        log_tail=_bounded(message.log_tail, DIAGNOSTIC_LIMITS["log_tail"], keep_end=True),
    )


def _bounded(text: str, limit: int, keep_end: bool = False) -> str:
    """At most `limit` characters, NUL replaced (databases refuse it in text)."""
    text = text[-limit:] if keep_end else text[:limit]
    return text.replace("\x00", "\ufffd")


def diagnostics_to_proto(diagnostics: Diagnostics) -> common_pb2.Diagnostics:
    code = (
        _inverse(_ERROR_CODES)[diagnostics.error_code]
        if diagnostics.error_code is not None
        else common_pb2.LIFECYCLE_ERROR_CODE_UNSPECIFIED
    )
    return common_pb2.Diagnostics(
        error_code=code,
        script_name=diagnostics.script_name,
        message=diagnostics.message,
        log_tail=diagnostics.log_tail,
    )


def audit_to_proto(entry: AuditEntry, event_id: int) -> identity_pb2.AuditEvent:
    return identity_pb2.AuditEvent(
        event_id=event_id,
        event_time=timestamp(entry.time),
        user_name=entry.user_name,
        access_key_id=entry.access_key_id,
        action=entry.action,
        resource=entry.resource,
        result=entry.result,
        source_address=entry.source_address,
    )


def time_from_proto(message: Timestamp, field: str) -> datetime:
    """A request's time; InvalidArgument names `field` when it is out of any calendar."""
    try:
        return message.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is not a valid time") from None


def audit_from_proto(message: identity_pb2.AuditEvent) -> AuditEntry:
    return AuditEntry(
        time=time_from_proto(message.event_time, "event.eventTime"),
        user_name=message.user_name,
        access_key_id=message.access_key_id,
        action=message.action,
        resource=message.resource,
        result=message.result,
        source_address=message.source_address,
    )
