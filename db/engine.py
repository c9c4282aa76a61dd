"""The async engine and the session factory, configured per database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from db import checkout, sql_log
from settings import Settings

#: Milliseconds an SQLite writer waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def create_engine(
    settings: Settings, *, serving: bool = True, url: str | None = None
) -> AsyncEngine:
    """Create the process's engine for ``settings.database_url`` (or ``url``: a read replica of
    it, from ``DATABASE_REPLICA_URLS``, made with the same settings).

    SQLite (aiosqlite) connections get ``foreign_keys=ON`` (off by default in SQLite, so ON
    DELETE CASCADE would silently do nothing), WAL journaling (readers do not block the
    writer) and a busy timeout. PostgreSQL (asyncpg) connections get a bounded pool (pre-ping
    only with ``DB_POOL_PRE_PING``: by default a connection found dead when used invalidates
    the whole pool, SQLAlchemy's "optimistic" disconnect handling, and reads retry once), the
    UTC time
    zone and, when ``serving`` (not for the migrate and seed commands), ``statement_timeout``
    (``DB_STATEMENT_TIMEOUT_SECONDS``). Statement parameters
    are left out of logged errors (``hide_parameters``) and, in production, of the SQL log
    (``db.sql_log``: ``DB_ECHO``, ``DB_SLOW_STATEMENT_MS``): they hold password hashes and
    users' text. Raises ``sqlalchemy.exc.ArgumentError`` for a
    URL SQLAlchemy cannot parse.
    """
    url = url or settings.database_url
    if settings.is_sqlite:
        engine = create_async_engine(
            url,
            hide_parameters=True,
            pool_timeout=settings.db_pool_timeout,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        _log_statements(engine, settings)
        return engine
    server_settings = {"timezone": "UTC", "application_name": "inkwell"}
    if serving:
        # A statement the operation's deadline waits for is bounded too (never a migration's).
        server_settings["statement_timeout"] = str(
            int(settings.db_statement_timeout_seconds * 1000)
        )
    engine = create_async_engine(
        url,
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args={"server_settings": server_settings},
    )
    if not settings.db_pool_pre_ping:
        # Nothing to check at checkout: a query's session may skip the greenlet.
        checkout.direct(engine)
    _log_statements(engine, settings)
    return engine


@asynccontextmanager
async def command_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine for one command of the command line (migrate, seed, an account, ``serve``'s
    checks): ``create_engine(settings, serving=False)``, disposed when the block ends."""
    engine = create_engine(settings, serving=False)
    try:
        yield engine
    finally:
        await engine.dispose()


def _log_statements(engine: AsyncEngine, settings: Settings) -> None:
    # SQLAlchemy's echo is never used: it logs twice and misses the reads on the driver.
    sql_log.install(
        engine,
        echo=settings.db_echo,
        slow_ms=settings.db_slow_statement_ms,
        parameters=not settings.is_production,
    )


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    cursor: Any = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Safe with WAL: a power loss may drop the last commits, never corrupt the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A factory of ``AsyncSession``, one per GraphQL operation (the unit of work).

    ``expire_on_commit=False``: objects stay readable after commit, so a mutation's payload can
    be resolved without implicit (and, with asyncio, forbidden) refresh I/O.
    Source: SQLAlchemy ``examples/asyncio/async_orm.py``.

    ``autoflush=False``: changes are flushed where the code says so (``schema.writes.flush.save``),
    never as a side effect of some read in between, so a failed version check or constraint
    always surfaces where it is turned into a typed result.
    """
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
