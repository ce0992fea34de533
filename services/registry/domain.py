"""The registry's domain: applications and registered revisions, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.core.revision import RevisionLocation


@dataclass(frozen=True)
class Application:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Revision:
    application_name: str
    location: RevisionLocation
    description: str
    size_bytes: int
    registered_at: datetime
    first_used_at: datetime | None = None
    last_used_at: datetime | None = None
    deployment_groups: tuple[str, ...] = ()


class SortBy(StrEnum):
    REGISTER_TIME = "registerTime"
    FIRST_USED_TIME = "firstUsedTime"
    LAST_USED_TIME = "lastUsedTime"


@dataclass(frozen=True)
class RevisionQuery:
    """ListApplicationRevisions: which revisions, in which order."""

    sort_by: SortBy = SortBy.REGISTER_TIME
    descending: bool = False
    s3_bucket: str = ""
    s3_key_prefix: str = ""
    deployed: bool | None = None
    """True: only used ones; False: only never used; None: all."""

    def select(self, revisions: list[Revision]) -> list[Revision]:
        """The revisions this query names, in its order (never-used ones last when sorting by
        use)."""
        chosen = [
            r
            for r in revisions
            if (not self.s3_bucket or r.location.bucket == self.s3_bucket)
            and r.location.key.startswith(self.s3_key_prefix)
            and (self.deployed is None or (r.first_used_at is not None) == self.deployed)
        ]
        field = {
            SortBy.REGISTER_TIME: "registered_at",
            SortBy.FIRST_USED_TIME: "first_used_at",
            SortBy.LAST_USED_TIME: "last_used_at",
        }[self.sort_by]
        used = [r for r in chosen if getattr(r, field) is not None]
        never = [r for r in chosen if getattr(r, field) is None]
        used.sort(key=lambda r: getattr(r, field), reverse=self.descending)
        return used + never
