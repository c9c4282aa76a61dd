"""Per-request SQL statistics: how many statements an operation ran and their time.

A ``SqlStats`` is bound to the current asyncio context (``bind``); SQLAlchemy's async layer
runs driver calls in a greenlet that inherits the caller's contextvars, so the dialect
events below see the ``SqlStats`` of the request that issued the statement, even with many
requests in flight, and so does ``db.reader`` for its reads on the driver (``record``).
Always installed: every operation's log line and metrics carry its counts. (The dialect's
own queries on an engine's first connection would count in the operation that opened it:
the server's lifespan opens one before serving.) A ``SqlStats`` may carry an ``observer``,
told of each statement as it ends (tracing's statement spans: ``schema.telemetry``), so
that nothing listens to the engine's cursor events on the serving path.
Source: SQLAlchemy docs, "Core Events" (``DialectEvents.do_execute``: "Return True to halt
further events from invoking, and to indicate that the cursor execution has already taken
place within the event handler") and "Performance: Query Profiling".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_current: ContextVar[SqlStats | None] = ContextVar("inkwell_sql_stats", default=None)

#: Told of each statement as it ends, in the statement's context: its text as sent, its
#: time in seconds, and the driver's error if it failed (``None``: it succeeded).
StatementObserver = Callable[[str, float, BaseException | None], None]


@dataclass(slots=True)
class SqlStats:
    """What one request cost the database: statement count and time in milliseconds."""

    statements: int = 0
    duration_ms: float = 0.0
    observer: StatementObserver | None = None

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


def record(started: float, statement: str, error: BaseException | None = None) -> None:
    """Count one statement (its text as sent) that began at ``started``
    (``time.perf_counter()``) and has just ended, failed with ``error`` if given, into the
    current request's ``SqlStats`` and tell its ``observer``; none bound: nothing.
    ``db.reader`` calls it for each read on the driver."""
    stats = _current.get()
    if stats is not None:
        elapsed = time.perf_counter() - started
        stats.statements += 1
        stats.duration_ms += elapsed * 1000.0
        if stats.observer is not None:
            stats.observer(statement, elapsed, error)


def _timed(run: Any) -> Any:
    """A ``do_execute``-style dialect event running the statement itself (``run``: the
    dialect's method) and recording it when a ``SqlStats`` is bound; else it leaves the
    statement to the dialect (returns False)."""

    def execute(cursor: Any, statement: str, *args: Any) -> bool:
        if _current.get() is None:
            return False
        started = time.perf_counter()
        try:
            run(cursor, statement, *args)
        except BaseException as error:
            record(started, statement, error)
            raise
        record(started, statement)
        return True

    return execute


def install(engine: AsyncEngine) -> None:
    """Record statements run through SQLAlchemy on ``engine`` into the current request's
    ``SqlStats`` (reads on the driver record themselves: ``record``).

    Through the dialect's ``do_execute`` events, which run the statement (the documented
    contract: a listener returning True has executed it), not the connection's cursor
    events: a listener on those makes every new ``Connection`` join the engine's
    listeners, which cost the peer benchmark's W3 about 86,000 instructions per request (3.6
    %), and the reads on the driver another 27,000 to fire them.
    """
    dialect = engine.sync_engine.dialect
    event.listen(engine.sync_engine, "do_execute", _timed(dialect.do_execute))
    event.listen(engine.sync_engine, "do_executemany", _timed(dialect.do_executemany))
    event.listen(engine.sync_engine, "do_execute_no_params", _timed(dialect.do_execute_no_params))
