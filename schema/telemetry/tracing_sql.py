"""A span per SQL statement of a traced operation, made as the statement ends.

``db.stats`` tells the operation's ``SqlStats.observer`` of each statement it counts, through
SQLAlchemy or on the driver (``db.reader``), in the statement's context: the span is made
then, under the current span (the operation's, a level's or a batch resolver's), with the
statement's start and end times. No listener on the engine's cursor events: one makes every
new ``Connection`` join the engine's listeners and fires two calls per statement (3.6 % of
W3's instructions for the statement counts, ``db.stats``). A statement outside a sampled
span (start-up, ``/readyz``, the broker's LISTEN connection, an unsampled trace) gets no
span. The statement text is recorded as sent, with its placeholders; parameter values never
are (they hold password hashes and users' text). A failed statement's span has its SQLSTATE
(PostgreSQL) or error class, never the message.

Source: OpenTelemetry semantic conventions, "Semantic conventions for database client spans"
(span name ``{db.operation.name}``, ``db.system.name``, ``db.query.text``,
``db.operation.name``, ``db.namespace``, ``server.address``, ``server.port``,
``db.response.status_code``, ``error.type``); OpenTelemetry Python API, ``Tracer.start_span``
(``start_time``) and ``Span.end`` (``end_time``), in nanoseconds since the epoch.
"""

from __future__ import annotations

import re
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.semconv.attributes import db_attributes, error_attributes, server_attributes
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from sqlalchemy.engine import URL

#: The statement's first keyword: the operation, when it is one (``SELECT``, ``INSERT``...).
_OPERATION = re.compile(r"\s*([A-Za-z]{2,16})\b")
POSTGRESQL_PORT = 5432


def operation_of(statement: str) -> str | None:
    """The statement's operation, its first keyword upper-cased (``"SELECT"``), or ``None``
    when it starts with something else (a parenthesis, a comment)."""
    found = _OPERATION.match(statement)
    return found.group(1).upper() if found else None


class SqlSpans:
    """The statement spans of one database (``url``): ``statement`` is the operations'
    ``SqlStats.observer``."""

    def __init__(self, tracer: Tracer, url: URL) -> None:
        self._tracer = tracer
        self._system = url.get_backend_name()  # "postgresql" or "sqlite", as semconv names them
        # Each attribute costs every span about 2 us (the SDK checks its value) and as much
        # again to export: only those the conventions require or recommend, and the port
        # only when not the default.
        attributes: dict[str, Any] = {db_attributes.DB_SYSTEM_NAME: self._system}
        if self._system != "sqlite":  # SQLite's "database" is a file path, not a namespace
            if url.database:
                attributes[db_attributes.DB_NAMESPACE] = url.database
            if url.host:
                attributes[server_attributes.SERVER_ADDRESS] = url.host
            if url.port and url.port != POSTGRESQL_PORT:
                attributes[server_attributes.SERVER_PORT] = url.port
        self._attributes = attributes

    def statement(self, statement: str, seconds: float, error: BaseException | None) -> None:
        """The span of a statement that has just ended, after ``seconds``, failed with
        ``error`` if given (a ``db.stats.StatementObserver``)."""
        if not trace.get_current_span().is_recording():
            return
        ended = time.time_ns()
        operation = operation_of(statement)
        attributes = {**self._attributes, db_attributes.DB_QUERY_TEXT: statement}
        if operation is not None:
            attributes[db_attributes.DB_OPERATION_NAME] = operation
        span = self._tracer.start_span(
            operation or self._system,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=ended - int(seconds * 1e9),
        )
        if error is not None:
            _failed(span, error)
        span.end(end_time=ended)


def _failed(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed: the SQLSTATE (PostgreSQL) or the error's class, never its
    message, which may quote values (a unique violation names the duplicate key)."""
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        span.set_attribute(db_attributes.DB_RESPONSE_STATUS_CODE, sqlstate)
        kind = sqlstate
    else:
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    span.set_status(StatusCode.ERROR, kind)
