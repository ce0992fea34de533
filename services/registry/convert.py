"""Registry messages ↔ domain objects."""

from __future__ import annotations

from deploy.v1 import registry_pb2
from services.core.convert import revision_to_proto, timestamp
from services.registry.domain import Application, Revision


def application_to_proto(app: Application) -> registry_pb2.ApplicationInfo:
    return registry_pb2.ApplicationInfo(
        application_id=app.id,
        application_name=app.name,
        create_time=timestamp(app.created_at),
        compute_platform="Server",
    )


def revision_to_get_response(revision: Revision) -> registry_pb2.GetApplicationRevisionResponse:
    return registry_pb2.GetApplicationRevisionResponse(
        application_name=revision.application_name,
        revision=revision_to_proto(revision.location),
        revision_info=registry_pb2.GenericRevisionInfo(
            description=revision.description,
            register_time=timestamp(revision.registered_at),
            size_bytes=revision.size_bytes,
        ),
    )
