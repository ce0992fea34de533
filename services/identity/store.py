"""Persistence of users, access keys, policies and the audit log (the identity tables only).

Every public method is one transaction. Secrets are stored sealed (services.identity.sealing)
and opened only to verify a signature.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from deploy import signing
from services.core.access import AuditEntry, Principal
from services.core.clock import utcnow
from services.core.db import Database
from services.core.errors import AlreadyExists, FailedPrecondition, NotFound
from services.core.paging import number_token, page_size, token_number
from services.identity.domain import (
    ACTIVE,
    ADMINISTRATOR,
    BUILT_IN,
    AccessKey,
    Policy,
    User,
    new_key_id,
    new_secret,
)
from services.identity.schema import (
    AccessKeyRow,
    AttachmentRow,
    AuditEventRow,
    PolicyRow,
    UserRow,
)
from services.identity.sealing import SecretBox

MAX_KEYS_PER_USER = 2
"""As IAM: two keys let a user rotate without a gap."""
AUDIT_PAGE = 100
_TOKEN_PREFIX = "a1:"


class IdentityStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def create_user(self, name: str) -> User:
        async with self._db.transaction() as session:
            if await session.get(UserRow, name) is not None:
                raise AlreadyExists(f"user {name!r} already exists")
            row = UserRow(name=name, created_at=utcnow())
            session.add(row)
            return _user(row)

    async def delete_user(self, name: str) -> None:
        """The user, its keys and its attachments go together."""
        async with self._db.transaction() as session:
            row = await _user_row(session, name)
            await session.execute(delete(AccessKeyRow).where(AccessKeyRow.user_name == name))
            await session.execute(delete(AttachmentRow).where(AttachmentRow.user_name == name))
            await session.delete(row)

    async def users(self) -> list[User]:
        async with self._db.read() as session:
            return [_user(r) for r in await session.scalars(select(UserRow).order_by(UserRow.name))]

    async def create_key(self, user_name: str) -> AccessKey:
        """A new active key; the only time its secret is known outside the sealed column."""
        async with self._db.transaction() as session:
            return await self._create_key(session, user_name)

    async def delete_key(self, user_name: str, key_id: str) -> None:
        async with self._db.transaction() as session:
            row = await session.get(AccessKeyRow, key_id)
            if row is None or row.user_name != user_name:
                raise NotFound(f"access key {key_id!r} of user {user_name!r} does not exist")
            await session.delete(row)

    async def keys(self, user_name: str) -> list[AccessKey]:
        async with self._db.read() as session:
            await _user_row(session, user_name)
            rows = await session.scalars(
                select(AccessKeyRow)
                .where(AccessKeyRow.user_name == user_name)
                .order_by(AccessKeyRow.created_at)
            )
            return [_key(r) for r in rows]

    async def create_policy(self, name: str, document: str) -> Policy:
        async with self._db.transaction() as session:
            if name in BUILT_IN or await session.get(PolicyRow, name) is not None:
                raise AlreadyExists(f"policy {name!r} already exists")
            session.add(PolicyRow(name=name, document=document, created_at=utcnow()))
            return Policy(name, document, built_in=False)

    async def policies(self) -> list[Policy]:
        async with self._db.read() as session:
            created = await session.scalars(select(PolicyRow).order_by(PolicyRow.name))
            return [
                *(Policy(n, d, built_in=True) for n, d in BUILT_IN.items()),
                *(Policy(r.name, r.document, built_in=False) for r in created),
            ]

    async def attach(self, user_name: str, policy_name: str) -> None:
        """Attach a policy (attaching it again changes nothing, as in IAM)."""
        async with self._db.transaction() as session:
            await _user_row(session, user_name)
            await _policy(session, policy_name)
            if await session.get(AttachmentRow, (user_name, policy_name)) is None:
                session.add(AttachmentRow(user_name=user_name, policy_name=policy_name))

    async def detach(self, user_name: str, policy_name: str) -> None:
        async with self._db.transaction() as session:
            row = await session.get(AttachmentRow, (user_name, policy_name))
            if row is None:
                raise NotFound(f"policy {policy_name!r} is not attached to user {user_name!r}")
            await session.delete(row)

    async def attached(self, user_name: str) -> list[Policy]:
        async with self._db.read() as session:
            await _user_row(session, user_name)
            return await _attached(session, user_name)

    async def principal(self, access_key_id: str, day: str) -> Principal | None:
        """The user an active key belongs to, the key's signing key for `day`, and the user's
        policy documents (services.core.access.Authority)."""
        async with self._db.read() as session:
            row = await session.get(AccessKeyRow, access_key_id)
            if row is None or row.status != ACTIVE:
                return None
            secret = self._box.open(row.sealed_secret, row.key_id)
            if secret is None:
                return None
            policies = await _attached(session, row.user_name)
            return Principal(
                row.user_name,
                row.key_id,
                signing.signing_key(secret, day),
                tuple(p.document for p in policies),
            )

    async def record(self, entry: AuditEntry) -> None:
        columns = dataclasses.asdict(entry)
        columns["event_time"] = columns.pop("time")
        async with self._db.transaction() as session:
            session.add(AuditEventRow(**columns))

    async def audit_events(
        self,
        *,
        user_name: str,
        action: str,
        start: datetime | None,
        end: datetime | None,
        token: str,
        max_items: int,
    ) -> tuple[list[AuditEntry], list[int], str]:
        """A page of audit entries, newest first, with their ids and the next page's token."""
        size = page_size(max_items, AUDIT_PAGE)
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(size + 1)
        if token:
            query = query.where(AuditEventRow.id < _before(token))
        if user_name:
            query = query.where(AuditEventRow.user_name == user_name)
        if action:
            query = query.where(func.lower(AuditEventRow.action) == action.lower())
        if start is not None:
            query = query.where(AuditEventRow.event_time >= start)
        if end is not None:
            query = query.where(AuditEventRow.event_time < end)
        async with self._db.read() as session:
            rows = list(await session.scalars(query))
        page = rows[:size]
        after = _token(page[-1].id) if len(rows) > size else ""
        return [_entry(r) for r in page], [r.id for r in page], after

    async def bootstrap(self) -> AccessKey | None:
        """On a server with no user yet: user `admin` with AdministratorAccess and a key."""
        async with self._db.transaction() as session:
            if await session.scalar(select(func.count()).select_from(UserRow)):
                return None
            session.add(UserRow(name="admin", created_at=utcnow()))
            await session.flush()  # the user row first: the attachment refers to it
            session.add(AttachmentRow(user_name="admin", policy_name=ADMINISTRATOR))
            return await self._create_key(session, "admin")

    async def _create_key(self, session: AsyncSession, user_name: str) -> AccessKey:
        await _user_row(session, user_name)
        count = await session.scalar(
            select(func.count()).where(AccessKeyRow.user_name == user_name)
        )
        if (count or 0) >= MAX_KEYS_PER_USER:
            raise FailedPrecondition(
                f"user {user_name!r} already has {MAX_KEYS_PER_USER} access keys (delete one first)"
            )
        key_id, secret = new_key_id(), new_secret()
        row = AccessKeyRow(
            key_id=key_id,
            user_name=user_name,
            sealed_secret=self._box.seal(secret, key_id),
            status=ACTIVE,
            created_at=utcnow(),
        )
        session.add(row)
        return AccessKey(key_id, user_name, ACTIVE, row.created_at, secret=secret)


async def _user_row(session: AsyncSession, name: str) -> UserRow:
    row = await session.get(UserRow, name)
    if row is None:
        raise NotFound(f"user {name!r} does not exist")
    return row


async def _policy(session: AsyncSession, name: str) -> Policy:
    if name in BUILT_IN:
        return Policy(name, BUILT_IN[name], built_in=True)
    row = await session.get(PolicyRow, name)
    if row is None:
        raise NotFound(f"policy {name!r} does not exist")
    return Policy(row.name, row.document, built_in=False)


async def _attached(session: AsyncSession, user_name: str) -> list[Policy]:
    names = await session.scalars(
        select(AttachmentRow.policy_name)
        .where(AttachmentRow.user_name == user_name)
        .order_by(AttachmentRow.policy_name)
    )
    found = []
    for name in names:
        try:
            found.append(await _policy(session, name))
        except NotFound:
            continue  # a policy deleted under an attachment grants nothing
    return found


def _user(row: UserRow) -> User:
    return User(row.name, row.created_at)


def _key(row: AccessKeyRow) -> AccessKey:
    return AccessKey(row.key_id, row.user_name, row.status, row.created_at)


def _entry(row: AuditEventRow) -> AuditEntry:
    return AuditEntry(
        time=row.event_time,
        user_name=row.user_name,
        access_key_id=row.access_key_id,
        action=row.action,
        resource=row.resource,
        result=row.result,
        source_address=row.source_address,
    )


def _token(event_id: int) -> str:
    return number_token(_TOKEN_PREFIX, event_id)


def _before(token: str) -> int:
    return token_number(_TOKEN_PREFIX, token, digits=18)
