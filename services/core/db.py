"""Database access: one async SQLAlchemy engine per service, schema brought up by Alembic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from deploy.private import private_file
from services.core.sqlite import one_trip_driver


class Base(DeclarativeBase):
    """Declarative base shared by every service's schema module."""


def _driver_url(url: str, *, asynchronous: bool) -> URL:
    """Pick our drivers whatever the user wrote: aiosqlite/pysqlite for SQLite, psycopg 3 for PG."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


SQLITE_POOL = {"pool_size": 20, "max_overflow": 10}
"""Connections kept open to a SQLite file (each with its driver thread): readers (watchers,
listings) beside the one writer. Beyond the kept ones, a connection is opened for one
transaction and closed after it: a thread started and the pragmas run again each time."""
WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}
"""Execution options of a transaction that will write (see _tune_sqlite)."""


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL and a busy timeout so readers and the single writer do not trip over each other;
    transactions begun by us, a writing one with BEGIN IMMEDIATE. Left to the driver, a
    transaction began at its first write, so what it had read before was not isolated: two
    enrolments could both spend a join token's last use. Taking the write lock first, a writing
    transaction waits its turn and reads what the one before it wrote."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None  # the driver begins nothing by itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


class Database:
    """A service's engine and session factory. Every state change is one `transaction()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        driver_url = _driver_url(url, asynchronous=True)
        if driver_url.get_backend_name() == "sqlite" and driver_url.database:
            private_file(Path(driver_url.database))
        sqlite = driver_url.get_backend_name() == "sqlite"
        # A server's connection may have gone since it was pooled (a restarted PostgreSQL): ping
        # it at checkout. A SQLite file cannot go away, and a ping per transaction is a round
        # trip to the driver's thread for nothing.
        self.engine = create_async_engine(
            driver_url,
            pool_pre_ping=not sqlite,
            **({"module": one_trip_driver(), **SQLITE_POOL} if sqlite else {}),
        )
        if sqlite:
            _tune_sqlite(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writing: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if sqlite else contextlib.nullcontext()
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error.

        SQLite lets one transaction write at a time, and one that finds the file locked polls
        it with growing sleeps (up to 100 ms each), blocking its driver thread. A busy fleet's
        writers (reports, commands, sightings) waited that way for a lock freed long before.
        This process's writers of a SQLite file wait their turn on the event loop instead,
        each woken as the one before it ends."""
        async with self._writing, self.sessions() as session, session.begin():
            await session.connection(execution_options=WRITE)  # SQLite: takes the write lock
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        async with self.sessions() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def upgrade_schema(url: str, service: str) -> None:
    """Run the service's Alembic migrations up to head (blocking; call it off the event loop).

    Each service keeps its own version table, so services can share one database.
    """
    driver_url = _driver_url(url, asynchronous=False)
    if driver_url.get_backend_name() == "sqlite" and driver_url.database:
        private_file(Path(driver_url.database))  # SQLite gives its -wal/-shm files this mode
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).resolve().parent.parent / service / "migrations")
    )
    config.set_main_option(
        "sqlalchemy.url", driver_url.render_as_string(hide_password=False).replace("%", "%%")
    )
    config.attributes["version_table"] = f"alembic_version_{service}"
    command.upgrade(config, "head")


async def open_database(url: str, service: str) -> Database:
    """Migrate the schema, then open the async engine."""
    await asyncio.to_thread(upgrade_schema, url, service)
    return Database(url)
