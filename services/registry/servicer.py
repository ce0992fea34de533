"""RevisionRegistry's gRPC edge: validate, load, delegate, convert — no business logic here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeAlias

from grpc import aio

from deploy.v1 import registry_pb2, registry_pb2_grpc
from services.core.convert import bundle_type_from_proto, revision_from_proto, revision_to_proto
from services.core.errors import InvalidArgument
from services.core.metrics import BUNDLE_BYTES
from services.core.names import check_name, check_text
from services.core.paging import page_of
from services.core.revision import RevisionLocation, RevisionType, check_revision
from services.registry.blobs import BlobStore
from services.registry.convert import (
    application_to_proto,
    revision_info_to_proto,
    revision_query_from_proto,
    revision_to_get_response,
)
from services.registry.revisions import Revisions
from services.registry.store import RegistryStore

MAX_BATCH = 25
REVISIONS_PAGE = 100
"""CodeDeploy's limit for BatchGetApplicationRevisions."""
Context: TypeAlias = aio.ServicerContext[Any, Any]


class RegistryServicer(registry_pb2_grpc.RevisionRegistryServicer):
    def __init__(self, store: RegistryStore, blobs: BlobStore, revisions: Revisions) -> None:
        self._store = store
        self._blobs = blobs
        self._revisions = revisions

    async def CreateApplication(
        self, request: registry_pb2.CreateApplicationRequest, context: Context
    ) -> registry_pb2.CreateApplicationResponse:
        name = check_name("applicationName", request.application_name)
        app = await self._store.create_application(name)
        return registry_pb2.CreateApplicationResponse(application_id=app.id)

    async def GetApplication(
        self, request: registry_pb2.GetApplicationRequest, context: Context
    ) -> registry_pb2.GetApplicationResponse:
        name = check_name("applicationName", request.application_name)
        app = await self._store.get_application(name)
        return registry_pb2.GetApplicationResponse(application=application_to_proto(app))

    async def ListApplications(
        self, request: registry_pb2.ListApplicationsRequest, context: Context
    ) -> registry_pb2.ListApplicationsResponse:
        return registry_pb2.ListApplicationsResponse(
            applications=await self._store.list_applications()
        )

    async def UploadBundle(
        self, request_iterator: AsyncIterator[registry_pb2.UploadBundleRequest], context: Context
    ) -> registry_pb2.UploadBundleResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument("header: the first message of an upload must be its header")
        bundle_type = bundle_type_from_proto(first.header.bundle_type, "header.bundleType")
        writer = self._blobs.writer()
        try:
            async for part in request_iterator:
                if not part.HasField("chunk"):
                    raise InvalidArgument("chunk: only the first message may be a header")
                await writer.write(part.chunk)
            digest = await writer.commit(first.header.expected_digest)
        except BaseException:
            writer.discard()
            raise
        BUNDLE_BYTES.labels("in").inc(writer.size)
        location = RevisionLocation(RevisionType.REGISTRY, digest=digest, bundle_type=bundle_type)
        return registry_pb2.UploadBundleResponse(
            location=revision_to_proto(location).registry_location, size_bytes=writer.size
        )

    async def DownloadBundle(
        self, request: registry_pb2.DownloadBundleRequest, context: Context
    ) -> AsyncIterator[registry_pb2.DownloadBundleResponse]:
        self._blobs.size_of(request.digest)
        async for chunk in self._blobs.read(request.digest):
            BUNDLE_BYTES.labels("out").inc(len(chunk))
            yield registry_pb2.DownloadBundleResponse(chunk=chunk)

    async def RegisterApplicationRevision(
        self, request: registry_pb2.RegisterApplicationRevisionRequest, context: Context
    ) -> registry_pb2.RegisterApplicationRevisionResponse:
        name = check_name("applicationName", request.application_name)
        location = check_revision(revision_from_proto(request.revision))
        used_by = (
            check_name("deploymentGroupName", request.deployment_group_name)
            if request.deployment_group_name
            else ""
        )
        description = check_text("description", request.description)
        location = await self._revisions.register(name, location, description, used_by)
        return registry_pb2.RegisterApplicationRevisionResponse(
            revision=revision_to_proto(location)
        )

    async def GetApplicationRevision(
        self, request: registry_pb2.GetApplicationRevisionRequest, context: Context
    ) -> registry_pb2.GetApplicationRevisionResponse:
        name = check_name("applicationName", request.application_name)
        location = check_revision(revision_from_proto(request.revision))
        return revision_to_get_response(await self._store.get_revision(name, location))

    async def ListApplicationRevisions(
        self, request: registry_pb2.ListApplicationRevisionsRequest, context: Context
    ) -> registry_pb2.ListApplicationRevisionsResponse:
        name = check_name("applicationName", request.application_name)
        query = revision_query_from_proto(request)
        revisions = query.select(await self._store.list_revisions(name))
        page, token = page_of(revisions, request.next_token, request.max_items, REVISIONS_PAGE)
        return registry_pb2.ListApplicationRevisionsResponse(
            revisions=[revision_to_proto(r.location) for r in page], next_token=token
        )

    async def BatchGetApplicationRevisions(
        self, request: registry_pb2.BatchGetApplicationRevisionsRequest, context: Context
    ) -> registry_pb2.BatchGetApplicationRevisionsResponse:
        name = check_name("applicationName", request.application_name)
        if not request.revisions or len(request.revisions) > MAX_BATCH:
            raise InvalidArgument(f"revisions: give 1 to {MAX_BATCH} revisions")
        found = [
            await self._store.get_revision(name, check_revision(revision_from_proto(r)))
            for r in request.revisions
        ]
        return registry_pb2.BatchGetApplicationRevisionsResponse(
            application_name=name,
            revisions=[
                registry_pb2.RevisionInfo(
                    revision_location=revision_to_proto(r.location),
                    generic_revision_info=revision_info_to_proto(r),
                )
                for r in found
            ],
        )
