"""Persistence of applications and revisions (the registry's tables, nothing else)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import as_utc, utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, NotFound
from services.core.revision import RevisionLocation, revision_from_json, revision_to_json
from services.registry.domain import Application, Revision
from services.registry.schema import ApplicationRow, RevisionRow


def _application(row: ApplicationRow) -> Application:
    return Application(row.id, row.name, as_utc(row.created_at) or utcnow())


class RegistryStore:
    """Reads and writes the registry's tables; each public method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_application(self, name: str) -> Application:
        row = ApplicationRow(id=str(uuid.uuid4()), name=name, created_at=utcnow())
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(f"application {name!r} already exists") from None
        return _application(row)

    async def get_application(self, name: str) -> Application:
        async with self._db.read() as session:
            return _application(await self._application_row(session, name))

    async def list_applications(self) -> list[str]:
        async with self._db.read() as session:
            rows = await session.scalars(select(ApplicationRow.name).order_by(ApplicationRow.name))
            return list(rows)

    async def register_revision(
        self, application_name: str, location: RevisionLocation, description: str, size: int
    ) -> Revision:
        """Record a revision; registering the same one again keeps the first record, except
        that an S3 object whose content changed gets its new digest and size."""
        async with self._db.transaction() as session:
            app = await self._application_row(session, application_name)
            existing = await session.scalar(
                select(RevisionRow).where(
                    RevisionRow.application_id == app.id,
                    RevisionRow.identity == location.identity(),
                )
            )
            if existing is not None:
                if revision_from_json(existing.location).digest != location.digest:
                    existing.location = revision_to_json(location)
                    existing.size_bytes = size
                return self._revision(application_name, existing)
            row = RevisionRow(
                application_id=app.id,
                identity=location.identity(),
                location=revision_to_json(location),
                description=description,
                size_bytes=size,
                registered_at=utcnow(),
            )
            session.add(row)
        return self._revision(application_name, row)

    async def get_revision(self, application_name: str, location: RevisionLocation) -> Revision:
        async with self._db.read() as session:
            app = await self._application_row(session, application_name)
            row = await session.scalar(
                select(RevisionRow).where(
                    RevisionRow.application_id == app.id,
                    RevisionRow.identity == location.identity(),
                )
            )
            if row is None:
                raise NotFound(
                    f"revision {location.identity()} is not registered "
                    f"for application {application_name!r}"
                )
            return self._revision(application_name, row)

    async def list_revisions(self, application_name: str) -> list[Revision]:
        async with self._db.read() as session:
            app = await self._application_row(session, application_name)
            rows = await session.scalars(
                select(RevisionRow)
                .where(RevisionRow.application_id == app.id)
                .order_by(RevisionRow.registered_at.desc(), RevisionRow.id.desc())
            )
            return [self._revision(application_name, row) for row in rows]

    @staticmethod
    async def _application_row(session: AsyncSession, name: str) -> ApplicationRow:
        row = await session.scalar(select(ApplicationRow).where(ApplicationRow.name == name))
        if row is None:
            raise NotFound(f"application {name!r} does not exist")
        return row

    @staticmethod
    def _revision(application_name: str, row: RevisionRow) -> Revision:
        return Revision(
            application_name=application_name,
            location=revision_from_json(row.location),
            description=row.description,
            size_bytes=row.size_bytes,
            registered_at=as_utc(row.registered_at) or utcnow(),
        )
