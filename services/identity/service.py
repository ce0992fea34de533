"""Assembles the identity service: database, sealed secrets, servicer, the first key."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from grpc import aio

from deploy.credentials import KEY_ID, SECRET
from deploy.private import write_private
from deploy.v1 import identity_pb2, identity_pb2_grpc
from services.core.config import ServerConfig
from services.core.db import Database, open_database
from services.core.pki import SEALING_KEY, sealing_key
from services.identity.sealing import SecretBox
from services.identity.servicer import IdentityServicer
from services.identity.store import IdentityStore

log = logging.getLogger(__name__)

ADMIN_CREDENTIALS = "admin-credentials"
"""In the data directory: the first administrator key, in the shared credentials file format
(DEPLOY_SHARED_CREDENTIALS_FILE), 0600."""


class IdentityService:
    grpc_names: tuple[str, ...] = (identity_pb2.DESCRIPTOR.services_by_name["Identity"].full_name,)

    def __init__(self, db: Database, store: IdentityStore, bootstrap: Path | None) -> None:
        self._db = db
        self.store = store
        self._bootstrap = bootstrap
        self._servicer = IdentityServicer(store)

    def add_to_server(self, server: aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServicer_to_server(self._servicer, server)

    async def start(self) -> None:
        """With authentication on, a server without users gets its administrator."""
        if self._bootstrap is None:
            return
        key = await self.store.bootstrap()
        if key is None:
            return
        write_private(
            self._bootstrap,
            f"[default]\n{KEY_ID} = {key.key_id}\n{SECRET} = {key.secret}\n".encode(),
        )
        log.info(
            "administrator access key created",
            extra={
                "fields": {
                    "user_name": key.user_name,
                    "access_key_id": key.key_id,
                    "credentials_file": str(self._bootstrap),
                }
            },
        )

    async def stop(self) -> None:
        await self._db.close()


async def create_identity(config: ServerConfig) -> IdentityService:
    db = await open_database(config.database_url_for("identity"), "identity")
    key = await asyncio.to_thread(sealing_key, config.authority_dir, config.data_dir / SEALING_KEY)
    box = SecretBox(key)
    bootstrap = config.data_dir / ADMIN_CREDENTIALS if config.auth else None
    return IdentityService(db, IdentityStore(db, box), bootstrap)
