"""Assembles the registry: database, blob store and servicer."""

from __future__ import annotations

from grpc import aio

from deploy.v1 import registry_pb2, registry_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.registry.blobs import BlobStore
from services.registry.git import GitBundles
from services.registry.revisions import Revisions
from services.registry.s3 import S3Bundles
from services.registry.servicer import RegistryServicer
from services.registry.store import RegistryStore


class RegistryService:
    grpc_names: tuple[str, ...] = (
        registry_pb2.DESCRIPTOR.services_by_name["RevisionRegistry"].full_name,
    )

    def __init__(self, db: Database, blobs: BlobStore, git: GitBundles) -> None:
        self._db = db
        store = RegistryStore(db)
        revisions = Revisions(store, blobs, S3Bundles(blobs), git)
        self._servicer = RegistryServicer(store, blobs, revisions)

    def add_to_server(self, server: aio.Server) -> None:
        registry_pb2_grpc.add_RevisionRegistryServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """The registry has no background work."""

    async def stop(self) -> None:
        await self._db.close()


async def create_registry(config: ServerConfig) -> RegistryService:
    db = await open_database(config.database_url_for("registry"), "registry")
    blobs = BlobStore(config.data_dir / "bundles", config.bundle_limits)
    git = GitBundles(
        config.git_base_url, config.data_dir / "git", blobs, config.git_allowed_schemes
    )
    return RegistryService(db, blobs, git)
