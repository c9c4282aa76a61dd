"""Per-request SQL statistics, recorded by engine events.

A ``SqlStats`` is bound to the current asyncio context (``bind``); SQLAlchemy's async layer
runs driver calls in a greenlet that inherits the caller's contextvars, so the cursor events
below see the ``SqlStats`` of the request that issued the statement, even with many requests
in flight. Source: SQLAlchemy docs, "Performance: Query Profiling" (the cursor-event timer).
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_current: ContextVar[SqlStats | None] = ContextVar("inkwell_sql_stats", default=None)


@dataclass(slots=True)
class SqlStats:
    """What one request cost the database: statement count and time in milliseconds."""

    statements: int = 0
    duration_ms: float = 0.0

    def bind(self) -> Token[SqlStats | None]:
        """Make this the current request's stats; pass the token to ``unbind``."""
        return _current.set(self)

    @staticmethod
    def unbind(token: Token[SqlStats | None]) -> None:
        """Restore the stats that were current before ``bind`` returned ``token``. A token
        made in another context (a subscription's stream closed from the connection's task)
        cannot be reset there; that context's value goes with it, so nothing is left over."""
        with contextlib.suppress(ValueError):
            _current.reset(token)


def _before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
    if _current.get() is not None:
        # One statement at a time runs on a connection, so one start time per connection.
        conn.info["inkwell_t0"] = time.perf_counter()


def _after(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
    stats = _current.get()
    if stats is not None:
        started = conn.info.pop("inkwell_t0", time.perf_counter())
        stats.statements += 1
        stats.duration_ms += (time.perf_counter() - started) * 1000.0


def install(engine: AsyncEngine) -> None:
    """Record statements run on ``engine`` into the current request's ``SqlStats``."""
    event.listen(engine.sync_engine, "before_cursor_execute", _before)
    event.listen(engine.sync_engine, "after_cursor_execute", _after)
