"""Registering a revision: look at its bundle where it lives, then record it."""

from __future__ import annotations

import asyncio
import dataclasses

from services.core.errors import InvalidArgument
from services.core.revision import RevisionLocation, RevisionType
from services.registry.archives import bundle_problem
from services.registry.blobs import BlobStore
from services.registry.git import GitBundles
from services.registry.s3 import S3Bundles
from services.registry.store import RegistryStore


class Revisions:
    def __init__(
        self, store: RegistryStore, blobs: BlobStore, s3: S3Bundles, git: GitBundles
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._s3 = s3
        self._git = git

    async def register(
        self, application: str, location: RevisionLocation, description: str, used_by: str
    ) -> RevisionLocation:
        """Check the bundle (present, of its declared type, with an appspec), record the
        revision with its digest, and return it as recorded; `used_by` names the group a
        deployment of it is being created for. An S3 object already recorded with the ETag it
        still has is only looked at (HEAD), not read again."""
        await self._store.get_application(application)
        observed_etag = None
        if location.revision_type is RevisionType.REGISTRY:
            size = self._blobs.size_of(location.digest)
            problem = await asyncio.to_thread(
                bundle_problem,
                self._blobs.path_for(location.digest),
                location.bundle_type,
                self._blobs.limits,
            )
            if problem is not None:
                raise InvalidArgument(f"revision.registryLocation: {location.digest} {problem}")
        elif location.revision_type is RevisionType.S3:
            found = await self._s3.head(location)
            size, observed_etag = found.size, found.etag
            digest = await self._store.recorded_digest(application, location, found.etag)
            if digest is None or not self._blobs.holds(digest):
                digest = await self._s3.digest(location)  # new, or changed: read it through
            location = dataclasses.replace(location, digest=digest)
        else:
            digest, size = await self._git.bundle(location)
            clone_url = self._git.clone_url(location.repository)
            location = dataclasses.replace(location, digest=digest, clone_url=clone_url)
        await self._store.register_revision(
            application, location, description, size, used_by, observed_etag
        )
        return location
