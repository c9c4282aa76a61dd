"""The SQL log: every statement once (``DB_ECHO``), or only the slow ones
(``DB_SLOW_STATEMENT_MS``), with its time.

SQLAlchemy's own ``echo`` writes through a handler of its own (so a configured root logger
printed each statement twice), and sees only what runs through a SQLAlchemy ``Connection``:
a query's reads on PostgreSQL run on the driver (``db.reader``) and never appeared. The
engine's cursor events see both, as ``db.reader`` fires them for its reads, so the log is
written from them, to the ``inkwell.sql`` logger: ``sql`` (the statement on one line),
``sql_ms``, ``via`` (``driver`` for a read on asyncpg, ``sqlalchemy`` for the rest) and, in
development only, ``parameters`` (they hold password hashes and users' text). The line
carries the request id of the operation that ran it (``schema.telemetry.logs`` adds it).
Every statement is logged at INFO with ``DB_ECHO``; one slower than ``DB_SLOW_STATEMENT_MS``
at WARNING.
Source: SQLAlchemy docs, "Core Events" (``before_cursor_execute``, ``after_cursor_execute``)
and "Performance: Query Profiling".
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("inkwell.sql")
#: Longest parameter list written (``repr``), in characters.
MAX_PARAMETERS = 1000
_STARTED = "inkwell_sql_log_t0"


def install(engine: AsyncEngine, *, echo: bool, slow_ms: float | None, parameters: bool) -> None:
    """Log ``engine``'s statements: all of them at INFO when ``echo``, those taking at least
    ``slow_ms`` milliseconds at WARNING (``None``: none), with their ``parameters`` when
    true. Installs nothing (no cost per statement) when neither is asked for."""
    if not echo and slow_ms is None:
        return

    def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()

    def after(
        conn: Connection,
        cursor: Any,
        statement: str,
        values: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        elapsed_ms = (time.perf_counter() - conn.info.pop(_STARTED, time.perf_counter())) * 1e3
        slow = slow_ms is not None and elapsed_ms >= slow_ms
        level = logging.WARNING if slow else logging.INFO
        if not (echo or slow) or not logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "sql": " ".join(statement.split()),
            "sql_ms": round(elapsed_ms, 3),
            # db.reader fires the events with neither cursor nor execution context.
            "via": "driver" if cursor is None else "sqlalchemy",
        }
        if parameters:
            fields["parameters"] = repr(values)[:MAX_PARAMETERS]
        logger.log(level, "slow statement" if slow else "statement", extra=fields)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
