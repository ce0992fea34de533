"""The registry's domain: applications and registered revisions, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
