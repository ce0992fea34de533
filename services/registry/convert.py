"""Registry messages ↔ domain objects."""

from __future__ import annotations

from deploy.v1 import registry_pb2
from services.core.convert import revision_to_proto, timestamp
from services.core.errors import InvalidArgument
from services.registry.domain import Application, Revision, RevisionQuery, SortBy


def application_to_proto(app: Application) -> registry_pb2.ApplicationInfo:
    return registry_pb2.ApplicationInfo(
        application_id=app.id,
        application_name=app.name,
        create_time=timestamp(app.created_at),
        compute_platform="Server",
    )


def revision_info_to_proto(revision: Revision) -> registry_pb2.GenericRevisionInfo:
    return registry_pb2.GenericRevisionInfo(
        description=revision.description,
        register_time=timestamp(revision.registered_at),
        size_bytes=revision.size_bytes,
        first_used_time=timestamp(revision.first_used_at),
        last_used_time=timestamp(revision.last_used_at),
        deployment_groups=revision.deployment_groups,
    )


def revision_to_get_response(revision: Revision) -> registry_pb2.GetApplicationRevisionResponse:
    return registry_pb2.GetApplicationRevisionResponse(
        application_name=revision.application_name,
        revision=revision_to_proto(revision.location),
        revision_info=revision_info_to_proto(revision),
    )


_SORT_BY = {
    registry_pb2.REVISION_SORT_BY_UNSPECIFIED: SortBy.REGISTER_TIME,
    registry_pb2.REVISION_SORT_BY_REGISTER_TIME: SortBy.REGISTER_TIME,
    registry_pb2.REVISION_SORT_BY_FIRST_USED_TIME: SortBy.FIRST_USED_TIME,
    registry_pb2.REVISION_SORT_BY_LAST_USED_TIME: SortBy.LAST_USED_TIME,
}
_DEPLOYED = {
    registry_pb2.DEPLOYED_FILTER_UNSPECIFIED: None,
    registry_pb2.DEPLOYED_FILTER_IGNORE: None,
    registry_pb2.DEPLOYED_FILTER_INCLUDE: True,
    registry_pb2.DEPLOYED_FILTER_EXCLUDE: False,
}


def revision_query_from_proto(
    request: registry_pb2.ListApplicationRevisionsRequest,
) -> RevisionQuery:
    if request.sort_by not in _SORT_BY:
        raise InvalidArgument(f"sortBy: unknown value {request.sort_by}")
    if request.deployed not in _DEPLOYED:
        raise InvalidArgument(f"deployed: unknown value {request.deployed}")
    if request.s3_key_prefix and not request.s3_bucket:
        raise InvalidArgument("s3KeyPrefix needs s3Bucket")
    return RevisionQuery(
        sort_by=_SORT_BY[request.sort_by],
        descending=request.sort_order == registry_pb2.SORT_ORDER_DESCENDING,
        s3_bucket=request.s3_bucket,
        s3_key_prefix=request.s3_key_prefix,
        deployed=_DEPLOYED[request.deployed],
    )
