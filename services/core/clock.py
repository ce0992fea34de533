"""Time in one place: timezone-aware UTC now."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Databases may hand back naive datetimes (SQLite); they are UTC by our convention."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
