"""Statements run straight on the asyncpg connection a Session holds.

``run`` sends SQL in asyncpg's own form (``$n`` parameters) on the driver connection of a
checked-out SQLAlchemy ``Connection``, in whatever transaction that connection is in: the
Session's binds decided where it runs, and its transaction (begun by the ORM's first
statement) is the one it joins. It skips SQLAlchemy's execution context and result objects,
which cost more than the round trip itself for a small statement, while keeping what the
rest of the code relies on: the engine's cursor events (statement counts, timings, the SQL
log), the operation's ``db.stats``, and SQLAlchemy's ``DBAPIError`` for a database error (so
``db.errors`` reads it as any other). ``db.reader`` runs the query operations' reads through
it; the outbox's write (``schema.live.outbox.write_postgres``) is the one write.

Source: SQLAlchemy docs, "Working with Driver SQL and Raw DBAPI Connections"
(``PoolProxiedConnection.driver_connection``), "Core Events" (``before_cursor_execute``,
``after_cursor_execute``); asyncpg docs, ``Connection.fetch``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from db import stats


async def run(
    connection: Connection,
    sql: str,
    parameters: Sequence[Any],
    record_class: type[asyncpg.Record] | None = None,
) -> list[asyncpg.Record]:
    """Run ``sql`` (asyncpg's ``$n`` parameters: ``parameters``, in order) on
    ``connection``'s driver connection, in whatever transaction that connection is in, and
    return its rows as asyncpg records (of ``record_class`` when given). Counted and seen by
    the engine's cursor events as ``fetch``'s reads are, and raising as it does
    (``sqlalchemy.exc.DBAPIError``; the connection invalidated when the error closed it).
    ``connection`` must be checked out, valid, held exclusively and on PostgreSQL."""
    # Valid, so reading its DBAPI connection does no I/O (no greenlet needed).
    driver: asyncpg.Connection = connection.connection.driver_connection
    # The engine's cursor events see this statement as they see every other (statement
    # counts, timings); there is no DBAPI cursor or execution context to give them. The
    # engine's own dispatcher: a new Connection's joins it to its own listeners (none here)
    # on first use, about a tenth of a request's SQLAlchemy calls.
    events = connection.engine.dispatch
    if events.before_cursor_execute:
        events.before_cursor_execute(connection, None, sql, parameters, None, False)
    started = time.perf_counter()
    try:
        records = await driver.fetch(sql, *parameters, record_class=record_class)
    except Exception as error:
        dead = driver.is_closed() or isinstance(
            error, (OSError, asyncpg.ConnectionDoesNotExistError)
        )
        if dead:
            # Outside a greenlet the driver connection is terminated at once, with no I/O
            # (it is gone already); the pool's record reconnects on its next checkout.
            connection.invalidate(error)
        stats.record(started, sql, error)
        raise DBAPIError(
            sql, None, error, hide_parameters=True, connection_invalidated=dead
        ) from error
    stats.record(started, sql)  # the operation's statement count and time (db.stats)
    if events.after_cursor_execute:
        events.after_cursor_execute(connection, None, sql, parameters, None, False)
    return records
