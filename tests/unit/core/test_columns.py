"""Stored moments read back as written: aware, in UTC, on SQLite (which keeps no zone) too; a
missing one stays missing, and a naive one is refused rather than guessed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, select
from sqlalchemy.exc import StatementError

from services.core.columns import UtcDateTime

METADATA = MetaData()
MOMENTS = Table(
    "moments", METADATA, Column("id", Integer, primary_key=True), Column("at", UtcDateTime())
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
