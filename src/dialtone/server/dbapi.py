"""A webhook's database access, straight on the drivers (sqlite3, psycopg): no SQLAlchemy.

A TwiML webhook runs two or three fixed statements; SQLAlchemy's per-execution work is several
times SQLite's own, and importing it is most of a Lambda cold start (~110 ms). Everything
else (the ORM, migrations, the token API, the commands) still goes through SQLAlchemy
(`db.Database.engine`), on the same tables.

Work is written once as a coroutine over a `Connection` and runs either on psycopg's
asynchronous connection (PostgreSQL, on the event loop) or on a blocking DB-API connection
(SQLite on the event loop, either database in a worker thread): there its awaits never
suspend, and `drive` runs it to completion at once.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_PARAMETER = re.compile(r"%\((\w+)\)s")


class Statement:
    """One SQL text, written in psycopg's `%(name)s` style; SQLite's `:name` made from it.

    `batched` (PostgreSQL, optional): the same statement for many requests at once (see
    `pg_async.Batches`): each parameter an array holding every request's value, and each
    result row led by `n`, the 1-based position of the request it answers."""

    def __init__(self, sql: str, batched: str | None = None) -> None:
        self.postgresql = sql
        self.sqlite = _PARAMETER.sub(r":\1", sql)
        self.batched = batched

    def sql(self, dialect: str) -> str:
        return self.postgresql if dialect == "postgresql" else self.sqlite


class Connection(Protocol):
    """What work sees: one connection in one transaction."""

    dialect: str

    async def fetchone(self, statement: Statement, params: dict[str, Any]) -> tuple | None: ...

    async def execute(self, statement: Statement, params: dict[str, Any]) -> None: ...


def timestamp(dialect: str, when: datetime) -> object:
    """A UTC datetime as the schema stores it: SQLAlchemy's SQLite DateTime text (naive UTC,
    microseconds always), or the datetime itself for PostgreSQL's timestamptz."""
    if dialect == "postgresql":
        return when
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class Direct:
    """A blocking DB-API connection (sqlite3, or psycopg's `Connection`)."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect

    async def fetchone(self, statement: Statement, params: dict[str, Any]) -> tuple | None:
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement.sql(self.dialect), params)
            return cursor.fetchone()
        finally:
            cursor.close()

    async def execute(self, statement: Statement, params: dict[str, Any]) -> None:
        cursor = self.raw.cursor()
        try:
            cursor.execute(statement.sql(self.dialect), params)
        finally:
            cursor.close()


class AsyncDirect:
    """psycopg's `AsyncConnection`, on the event loop."""

    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def fetchone(self, statement: Statement, params: dict[str, Any]) -> tuple | None:
        cursor = await self.raw.execute(statement.postgresql, params)
        return await cursor.fetchone()

    async def execute(self, statement: Statement, params: dict[str, Any]) -> None:
        await self.raw.execute(statement.postgresql, params)


def drive(work: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine whose awaits never suspend (work on a blocking connection)."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value
    work.close()
    raise RuntimeError("database work suspended on a blocking connection")


def dialect_of(url: str) -> str:
    """`sqlite`, `postgresql`, …: the URL's scheme without its driver."""
    return url.partition(":")[0].partition("+")[0]


def sqlite_path(url: str) -> str | None:
    """The file of a `sqlite:///path` URL; None for an in-memory or URI-form database."""
    rest = url.partition(":")[2]
    if not rest.startswith("///"):
        return None
    path = unquote(rest[3:].partition("?")[0])
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def postgresql_conninfo(url: str) -> str:
    """libpq's URI for a SQLAlchemy `postgresql+psycopg://` URL."""
    return "postgresql:" + url.partition(":")[2]


def unavailable(failure: BaseException) -> bool:
    """The database is not answering (down, unreachable, too slow, locked), as opposed to a
    fault in the data or the SQL. SQLAlchemy's classes count only once it is imported."""
    if isinstance(failure, TimeoutError | sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(
        failure, psycopg.OperationalError | psycopg.InterfaceError
    ):
        return True  # statement_timeout's QueryCanceled included: too slow
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(
        failure, exc.OperationalError | exc.InterfaceError | exc.TimeoutError
    )


def is_busy(failure: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (extended codes included): another writer holds the lock."""
    original = getattr(failure, "orig", None) or failure
    code = getattr(original, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (5, 6)
