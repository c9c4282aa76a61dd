"""Column types and SQL functions that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

#: BIGINT primary keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY aliases the rowid and
#: autoincrements, so the variant keeps ids generated there too.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

#: Table options for tables with a generated id. SQLite: AUTOINCREMENT, so the id of a deleted
#: row (and so its global ID) is never handed out again; rowid reuse would let a stale global ID
#: name a different object.
SQLITE_TABLE_ARGS = {"sqlite_autoincrement": True}

#: SQLite stores datetimes as text; this is the exact text SQLAlchemy's SQLite DATETIME type
#: writes for bound values ("2026-11-22 03:57:47.123456"). Server defaults must write the same
#: shape, or equality on a cursor value (keyset pagination) would miss rows.
SQLITE_UTC_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


class UTCDateTime(TypeDecorator[datetime]):
    """A ``timestamptz`` that is always timezone-aware UTC in Python, on every database.

    PostgreSQL stores ``timestamptz`` natively. SQLite has no datetime type, so values are
    stored as naive UTC text and tagged with UTC when read back. Binding a naive datetime raises
    ``ValueError``: a naive value's zone is a guess, and a guess corrupts ordering.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg already returns every timestamptz as an aware UTC datetime: nothing to do
        # per value (reads of thousands of rows would pay for it).
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):
    """The transaction's current time in UTC: ``now()`` on PostgreSQL, text on SQLite.

    Source: SQLAlchemy docs, "Custom SQL Constructs and Compilation Extension" (the utcnow
    example), https://docs.sqlalchemy.org/en/20/core/compiler.html
    """

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow, "postgresql")
def _pg_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()"


@compiles(utcnow, "sqlite")
def _sqlite_utcnow(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return SQLITE_UTC_NOW
