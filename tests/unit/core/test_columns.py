"""Stored values read back as written. Moments: aware, in UTC, on SQLite (which keeps no zone)
too, and a naive one is refused rather than guessed. JSON values: the domain's own types. A
missing value stays missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import StatementError

from services.core.columns import DIAGNOSTICS, REVISION, STRINGS, UtcDateTime
from services.core.diagnostics import Diagnostics, ErrorCode
from services.core.revision import BundleType, RevisionLocation, RevisionType

METADATA = MetaData()
MOMENTS = Table(
    "moments", METADATA, Column("id", Integer, primary_key=True), Column("at", UtcDateTime())
)
VALUES = Table(
    "json_values",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("revision", REVISION),
    Column("names", STRINGS),
    Column("diagnostics", DIAGNOSTICS),
)


def test_a_moment_comes_back_aware_in_utc_and_missing_stays_missing() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    berlin = datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    with engine.begin() as connection:
        connection.execute(insert(MOMENTS), [{"id": 1, "at": berlin}, {"id": 2, "at": None}])
        rows = dict(connection.execute(select(MOMENTS.c.id, MOMENTS.c.at)).all())
        earliest = connection.scalar(select(func.min(MOMENTS.c.at)))
    assert rows[1] == berlin and rows[1].tzinfo is UTC
    assert rows[2] is None
    assert earliest == berlin and earliest.tzinfo is UTC


def test_a_naive_moment_is_refused() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    with engine.begin() as connection, pytest.raises(StatementError, match="timezone-aware"):
        connection.execute(insert(MOMENTS), [{"id": 1, "at": datetime(2026, 12, 1, 8, 0)}])


def test_json_values_come_back_as_their_types_and_missing_stays_missing() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    revision = RevisionLocation(
        RevisionType.S3, bucket="b", key="app.zip", bundle_type=BundleType.ZIP, digest="sha256:ab"
    )
    failed = Diagnostics(ErrorCode.SCRIPT_FAILED, "start.sh", "exit 1", "tail")
    with engine.begin() as connection:
        connection.execute(
            insert(VALUES),
            [
                {"id": 1, "revision": revision, "names": ("web", "api"), "diagnostics": failed},
                {"id": 2, "revision": None, "names": None, "diagnostics": None},
            ],
        )
        rows = {row.id: row for row in connection.execute(select(VALUES))}
        stored = connection.scalar(text("SELECT names FROM json_values WHERE id = 1"))
    assert (rows[1].revision, rows[1].names, rows[1].diagnostics) == (
        revision,
        ("web", "api"),
        failed,
    )
    assert (rows[2].revision, rows[2].names, rows[2].diagnostics) == (None, None, None)
    assert stored == '["web", "api"]'  # the JSON the column always held


def test_diagnostics_stored_without_a_code_read_back_without_one() -> None:
    engine = create_engine("sqlite://")
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO json_values (id, diagnostics) VALUES (1, :raw)"),
            {"raw": '{"error_code": null, "script_name": "", "message": "", "log_tail": ""}'},
        )
        assert connection.scalar(select(VALUES.c.diagnostics)) == Diagnostics()
