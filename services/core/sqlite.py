"""SQLite through aiosqlite with one trip to the driver's thread per statement.

aiosqlite runs every call on its connection's thread, and SQLAlchemy's adapter makes four calls
per statement (open a cursor, execute, fetch the rows, close). Each trip is a hand-over between
threads — about 75 µs on the CI machine when idle, far more when the event loop is busy, and
the statement itself takes a few microseconds. Here a statement and everything read from it
travel in one call: a step of a deployment (twenty-odd statements) costs half as much.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_


class _Ran:
    """What a statement's cursor told, kept after the cursor is closed on the driver's
    thread (what SQLAlchemy reads of a cursor besides its rows)."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor | None = None) -> None:
        self.description: Any = None if cursor is None else cursor.description
        self.rowcount = -1 if cursor is None else cursor.rowcount
        self.lastrowid = None if cursor is None else cursor.lastrowid
        self.arraysize = 1

    async def close(self) -> None:
        """Closed already, on the driver's thread."""


def _execute(
    connection: sqlite3.Connection, operation: str, parameters: Sequence[Any] | None
) -> tuple[_Ran, list[Any]]:
    """On the driver's thread: run the statement and read all it returns."""
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return _Ran(cursor), rows
    finally:
        cursor.close()


def _execute_many(
    connection: sqlite3.Connection, operation: str, rows: Sequence[Sequence[Any]]
) -> _Ran:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, rows)
        return _Ran(cursor)
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Ran()  # no trip: the statement's own trip opens the real cursor

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            ran, rows = await self._connection._execute(
                _execute,
                self._connection._conn,
                operation,
                parameters,
            )
            self._cursor = ran
            if ran.description:
                self._rows = collections.deque(rows)
            return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._cursor = await self._connection._execute(
                _execute_many,
                self._connection._conn,
                operation,
                seq_of_parameters,
            )
            return None


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneTripCursor


class OneTripDriver(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module to give `create_async_engine(..., module=)` for sqlite+aiosqlite."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _OneTripConnection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's own: it never holds the exit
        return _OneTripConnection(self, await_(connection))  # type: ignore[arg-type]


def one_trip_driver() -> ModuleType:
    """The driver, typed as the module SQLAlchemy takes."""
    return OneTripDriver()  # type: ignore[return-value]
