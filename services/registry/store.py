"""Persistence of applications and revisions (the registry's tables, nothing else)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, NotFound
from services.core.revision import RevisionLocation
from services.registry.domain import Application, Revision
from services.registry.schema import ApplicationRow, RevisionRow


def _application(row: ApplicationRow) -> Application:
    return Application(row.id, row.name, row.created_at)


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
        self,
        application_name: str,
        location: RevisionLocation,
        description: str,
        size: int,
        used_by: str = "",
        observed_etag: str | None = None,
    ) -> Revision:
        """Record a revision; registering the same one again keeps the first record, except
        that an S3 object whose content changed gets its new digest and size. `used_by` names
        the group a deployment of it is being created for."""
        now = utcnow()
        async with self._db.transaction() as session:
            app = await self._application_row(session, application_name)
            existing = await self._revision_row(session, app.id, location)
            row = existing or RevisionRow(
                application_id=app.id,
                identity=location.identity(),
                location=location,
                description=description,
                size_bytes=size,
                registered_at=now,
                deployment_groups=(),
            )
            if existing is None:
                session.add(row)
            elif existing.location.digest != location.digest:
                existing.location = location
                existing.size_bytes = size
            if observed_etag is not None:
                row.observed_etag = observed_etag
            if used_by:
                row.first_used_at = row.first_used_at or now
                row.last_used_at = now
                if used_by not in row.deployment_groups:
                    row.deployment_groups = (*row.deployment_groups, used_by)
            await session.flush()
            return self._revision(application_name, row)

    @staticmethod
    async def _revision_row(
        session: AsyncSession, application_id: str, location: RevisionLocation
    ) -> RevisionRow | None:
        return await session.scalar(
            select(RevisionRow).where(
                RevisionRow.application_id == application_id,
                RevisionRow.identity == location.identity(),
            )
        )

    async def recorded_digest(
        self, application_name: str, location: RevisionLocation, observed_etag: str
    ) -> str | None:
        """The digest recorded for this S3 revision when its object had `observed_etag`; None
        when it is not recorded, or its object had another ETag then."""
        async with self._db.read() as session:
            app = await self._application_row(session, application_name)
            row = await self._revision_row(session, app.id, location)
            if row is None or row.observed_etag != observed_etag:
                return None
            return row.location.digest or None

    async def get_revision(self, application_name: str, location: RevisionLocation) -> Revision:
        async with self._db.read() as session:
            app = await self._application_row(session, application_name)
            row = await self._revision_row(session, app.id, location)
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
                .order_by(RevisionRow.id)
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
            location=row.location,
            description=row.description,
            size_bytes=row.size_bytes,
            registered_at=row.registered_at,
            first_used_at=row.first_used_at,
            last_used_at=row.last_used_at,
            deployment_groups=row.deployment_groups,
        )
