"""The SQLite driver that runs a statement in one trip to aiosqlite's thread: what SQLAlchemy
reads of a statement (rows, RETURNING, row counts, errors) is what the stock driver gives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.core.sqlite import one_trip_driver

METADATA = MetaData()
ITEMS = Table(
    "items",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'test.db'}", module=one_trip_driver()
    )
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield engine
    await engine.dispose()


async def test_rows_returning_and_counts_are_as_the_statement_left_them(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(insert(ITEMS).values(name="a"))
        assert inserted.inserted_primary_key == (1,)
        await connection.execute(insert(ITEMS), [{"name": "b"}, {"name": "c"}])  # executemany
        numbered = await connection.execute(
            insert(ITEMS).returning(ITEMS.c.id, ITEMS.c.name), [{"name": "d"}, {"name": "e"}]
        )
        assert sorted(numbered.all()) == [(4, "d"), (5, "e")]
        changed = await connection.execute(
            update(ITEMS).where(ITEMS.c.id > 3).values(name=ITEMS.c.name + "!")
        )
        assert changed.rowcount == 2
        names = await connection.scalars(select(ITEMS.c.name).order_by(ITEMS.c.id))
        assert names.all() == ["a", "b", "c", "d!", "e!"]


async def test_a_refused_statement_raises_sqlalchemys_error_and_rolls_back(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(ITEMS).values(name="a"))
            await connection.execute(insert(ITEMS).values(name="a"))
    async with engine.connect() as connection:
        assert (await connection.scalars(select(ITEMS.c.name))).all() == []


async def test_a_statement_is_one_trip_to_the_drivers_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = 0
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        nonlocal trips
        trips += 1
        return await original(self, fn, *args)  # type: ignore[no-untyped-call]

    async with engine.connect() as connection:
        await connection.execute(select(ITEMS))  # the transaction has begun
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        rows = await connection.execute(select(ITEMS.c.id, ITEMS.c.name))
        assert rows.all() == []
        assert trips == 1  # the stock driver: cursor, execute, fetch, close
