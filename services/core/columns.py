"""Stored values with their types: a column type per kind of value the services keep, so that
rows read back as what was written (and missing stays missing)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.revision import RevisionLocation, revision_from_json, revision_to_json

T = TypeVar("T")


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC: written aware and converted to UTC (naive values are refused, not
    guessed), read back aware whatever the database keeps (SQLite keeps no zone: its values are
    UTC by this type)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a stored moment must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value  # type: ignore[no-any-return]
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class Json(TypeDecorator[T]):
    """A value kept as JSON text, written with `encode` and read back with `decode`, so that
    rows hold the domain's own types and nothing decodes by hand. NULL stays None: a decoder
    is never asked to invent a value for one. A decoder does take the empty object or list
    that older rows got as their column was added, giving the type's defaults."""

    impl = Text
    cache_ok = True

    def __init__(self, encode: Callable[[T], Any], decode: Callable[[Any], T]) -> None:
        super().__init__()
        self.encode = encode
        self.decode = decode

    def process_bind_param(self, value: T | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(self.encode(value), sort_keys=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> T | None:
        if value is None:
            return None
        return self.decode(json.loads(value))


STRINGS = Json[tuple[str, ...]](list, lambda raw: tuple(str(item) for item in raw))
"""A tuple of strings (names, messages), kept as a JSON list."""
REVISION = Json[RevisionLocation](revision_to_json, revision_from_json)
"""Where a revision is, kept as a JSON object."""


def _diagnostics_from_json(raw: dict[str, str | None]) -> Diagnostics:
    code = raw.get("error_code")
    return Diagnostics(
        error_code=ErrorCode(code) if code else None,
        script_name=raw.get("script_name") or "",
        message=raw.get("message") or "",
        log_tail=raw.get("log_tail") or "",
    )


DIAGNOSTICS = Json[Diagnostics](dataclasses.asdict, _diagnostics_from_json)
"""Why an event ended as it did: {error_code, script_name, message, log_tail}."""
