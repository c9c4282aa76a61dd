"""A span per SQL statement of a traced operation, from the engine's cursor events.

``before_cursor_execute`` starts a client span under the current span (the operation's, a
level's or a batch resolver's), ``after_cursor_execute`` ends it; both fire for statements
through SQLAlchemy and for reads on the driver (``db.reader`` fires them through the engine's
dispatcher, only when something listens: so the listeners are installed only when tracing is
on). A statement outside a sampled span (start-up, ``/readyz``, the broker's LISTEN
connection, an unsampled trace) gets no span. The statement text is recorded as sent, with
its placeholders; parameter values never are (they hold password hashes and users' text).

A statement that fails through SQLAlchemy ends its span in ``handle_error``. A failed read on
the driver fires no event: its span is ended, as failed, when its connection next runs a
statement, is invalidated or goes back to the pool (``invalidate``, ``checkin``), whichever
comes first.

Source: OpenTelemetry semantic conventions, "Semantic conventions for database client spans"
(span name ``{db.operation.name}``, ``db.system.name``, ``db.query.text``,
``db.operation.name``, ``db.namespace``, ``server.address``, ``server.port``,
``db.response.status_code``, ``error.type``); SQLAlchemy docs, "Core Events"
(``ConnectionEvents``, ``DialectEvents.handle_error``, ``PoolEvents``).
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv.attributes import db_attributes, error_attributes, server_attributes
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

#: Where a statement's span waits for its end: the connection's ``info`` (one statement at a
#: time runs on a connection, and the pool's events see the same dictionary).
_SPAN = "inkwell_sql_span"
#: The statement's first keyword: the operation, when it is one (``SELECT``, ``INSERT``...).
_OPERATION = re.compile(r"\s*([A-Za-z]{2,16})\b")
POSTGRESQL_PORT = 5432


def operation_of(statement: str) -> str | None:
    """The statement's operation, its first keyword upper-cased (``"SELECT"``), or ``None``
    when it starts with something else (a parenthesis, a comment)."""
    found = _OPERATION.match(statement)
    return found.group(1).upper() if found else None


class SqlSpans:
    """The statement spans of one engine: ``install`` adds the listeners (its methods named
    after their events), once."""

    def __init__(self, tracer: Tracer, engine: AsyncEngine) -> None:
        self._tracer = tracer
        url = engine.url
        self._system = url.get_backend_name()  # "postgresql" or "sqlite", as semconv names them
        # Each attribute costs every span about 2 us (the SDK checks its value): only those
        # the conventions require or recommend, and the port only when not the default.
        attributes: dict[str, Any] = {db_attributes.DB_SYSTEM_NAME: self._system}
        if self._system != "sqlite":  # SQLite's "database" is a file path, not a namespace
            if url.database:
                attributes[db_attributes.DB_NAMESPACE] = url.database
            if url.host:
                attributes[server_attributes.SERVER_ADDRESS] = url.host
            if url.port and url.port != POSTGRESQL_PORT:
                attributes[server_attributes.SERVER_PORT] = url.port
        self._attributes = attributes
        self._engine = engine

    def install(self) -> None:
        """Listen to the engine's statement, error and pool events."""
        engine = self._engine.sync_engine
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)
        event.listen(engine, "handle_error", self.failed)
        event.listen(engine, "checkin", self.returned)
        event.listen(engine, "invalidate", self.invalidated)

    def before(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        info = conn.info
        stale = info.pop(_SPAN, None)
        if stale is not None:  # a read on the driver that failed (no event of its own)
            _end_failed(stale, None)
        if not trace.get_current_span().is_recording():
            return
        operation = operation_of(statement)
        attributes = {**self._attributes, db_attributes.DB_QUERY_TEXT: statement}
        if operation is not None:
            attributes[db_attributes.DB_OPERATION_NAME] = operation
        info[_SPAN] = self._tracer.start_span(
            operation or self._system, kind=SpanKind.CLIENT, attributes=attributes
        )

    def after(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        span = conn.info.pop(_SPAN, None)
        if span is not None:
            span.end()

    def failed(self, context: ExceptionContext) -> None:
        conn = context.connection
        span = conn.info.pop(_SPAN, None) if conn is not None else None
        if span is not None:
            _end_failed(span, context.original_exception)

    def returned(self, dbapi_connection: Any, record: Any) -> None:
        span = record.info.pop(_SPAN, None)
        if span is not None:
            _end_failed(span, None)

    def invalidated(self, dbapi_connection: Any, record: Any, error: Any) -> None:
        span = record.info.pop(_SPAN, None)
        if span is not None:
            _end_failed(span, error)


def _end_failed(span: Span, error: BaseException | None) -> None:
    """End ``span`` as failed: the SQLSTATE (PostgreSQL) or the error's class, never its
    message, which may quote values (a unique violation names the duplicate key)."""
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        span.set_attribute(db_attributes.DB_RESPONSE_STATUS_CODE, sqlstate)
        kind = sqlstate
    elif error is not None:
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
    else:
        kind = "_OTHER"  # semconv's value when the cause is not known
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    span.set_status(StatusCode.ERROR, kind)
    span.end()
