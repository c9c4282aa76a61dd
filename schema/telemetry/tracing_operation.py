"""The span of one GraphQL operation, continuing the client's trace.

The outermost schema extension when tracing is on, so its span covers every other hook
(parsing, validation, signing in, the transaction, closing the unit of work). The parent is
the W3C ``traceparent`` (and ``tracestate``, ``baggage``) of the request: the HTTP request's
headers, or over a WebSocket the headers of the connection's upgrade request, so every
operation of a connection continues the trace its client opened. Without one, the span
continues the current trace if there is one (an outer instrumentation's) or starts a trace.

The span's name and attributes follow OpenTelemetry's GraphQL conventions, set when the
operation ends (the document is parsed by then): ``{graphql.operation.type}
{graphql.operation.name}``, ``graphql.operation.type``, ``graphql.operation.name``. The
document itself (``graphql.document``, optional) is not recorded: a document's literals may
be a password (``login``). ``enduser.id`` is the signed-in viewer's id. A result with errors
sets the span's status to error, ``error.type`` to the first error's ``extensions.code`` and
``inkwell.graphql.error_codes`` to every distinct code, in order; messages stay out (an
unexpected error's message is for the log, with its ``errorId``). A subscription's span lasts
as long as the subscription, and the codes are those of its last result. An operation
cancelled because its client went away (a subscription completed, a request abandoned) is
no failure: ``inkwell.graphql.cancelled`` is true.

Source: OpenTelemetry semantic conventions, "Semantic conventions for GraphQL server" and
"Recording errors" (``error.type``); W3C Trace Context; OpenTelemetry Python docs,
``opentelemetry.propagate.extract``, ``opentelemetry.context.attach``/``detach``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from graphql import GraphQLError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from db.stats import SqlStats, StatementObserver
from schema.engine.extensions.masking import default_code
from schema.errors import InkwellError

OPERATION_NAME = "graphql.operation.name"
OPERATION_TYPE = "graphql.operation.type"
ENDUSER_ID = "enduser.id"
ERROR_TYPE = "error.type"
ERROR_CODES = "inkwell.graphql.error_codes"
CANCELLED = "inkwell.graphql.cancelled"
#: The name of an operation whose type is not known (a document that did not parse).
UNKNOWN = "GraphQL Operation"
#: Longest operation name put in a span's name (a client chooses it).
MAX_NAME = 100

#: Set while an operation's span is current in this context: whether the span can be detached
#: here (``on_operation``'s end may run in another context: a subscription's stream closed by
#: the connection's task), where OpenTelemetry's ``detach`` would log an error.
_attached: ContextVar[bool] = ContextVar("inkwell_operation_span", default=False)


class TracedOperation(SchemaExtension):
    """A span per operation with ``tracer`` (the module docstring). ``fields`` are the
    headers the process's propagator reads (``OTEL_PROPAGATORS``; by default
    ``traceparent``, ``tracestate``, ``baggage``), as ASGI names them (lower-case bytes);
    ``statements`` makes the spans of the operation's SQL statements (``tracing_sql``), as
    its ``SqlStats.observer``."""

    def __init__(
        self, tracer: Tracer, fields: frozenset[bytes], statements: StatementObserver
    ) -> None:
        self.tracer = tracer
        self.fields = fields
        self.statements = statements

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        sql = getattr(context, "sql", None)
        if isinstance(sql, SqlStats):
            sql.observer = self.statements
        request: Any = getattr(context, "request", None)
        parent = otel_context.get_current()
        # Most requests carry no trace: one look through the raw headers (the ASGI scope's)
        # costs a fraction of extracting.
        scope = getattr(request, "scope", None)
        if scope is not None and any(name in self.fields for name, _ in scope["headers"]):
            parent = propagate.extract(request.headers, context=parent)
        outer = trace.get_current_span(parent).get_span_context()
        # The server's span, unless it runs inside one of this process (an HTTP server span).
        kind = SpanKind.INTERNAL if outer.is_valid and not outer.is_remote else SpanKind.SERVER
        span = self.tracer.start_span(UNKNOWN, context=parent, kind=kind)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        mine = _attached.set(True)
        failure: BaseException | None = None
        try:
            yield
        except BaseException as error:
            failure = error
            raise
        finally:
            try:
                _attached.reset(mine)
            except ValueError:  # another context: this one's value goes with it
                pass
            else:
                otel_context.detach(token)
            _finish(span, self.execution_context, failure)


def _finish(span: Span, execution: ExecutionContext, failure: BaseException | None) -> None:
    """Name ``span`` and set its attributes from the finished ``execution``, then end it."""
    name = execution.operation_name
    try:
        kind: str | None = execution.operation_type.value
    except Exception:  # no document, or no operation of that name
        kind = None
    attributes: dict[str, AttributeValue] = {}
    if kind is not None:
        span.update_name(f"{kind} {name[:MAX_NAME]}" if name else kind)
        attributes[OPERATION_TYPE] = kind
    if name:
        attributes[OPERATION_NAME] = name
    viewer = getattr(execution.context, "viewer", None)
    if viewer is not None:
        attributes[ENDUSER_ID] = str(viewer.id)
    codes = _codes(execution)
    if isinstance(failure, asyncio.CancelledError):
        # The client went away (a subscription completed, a request abandoned): no failure.
        attributes[CANCELLED] = True
    elif failure is not None and not isinstance(failure, GeneratorExit):
        codes.append(_code_of(failure))
    if codes:
        attributes[ERROR_CODES] = codes
        attributes[ERROR_TYPE] = codes[0]
        span.set_status(StatusCode.ERROR, codes[0])
    span.set_attributes(attributes)  # at once: each call takes the span's lock
    span.end()


def _code_of(failure: BaseException) -> str:
    """What the client is told of an exception that ended the operation (Strawberry turns it
    into the result's one error): its code, or else its class."""
    if isinstance(failure, GraphQLError):  # a syntax error, before ``process_errors``
        return (failure.extensions or {}).get("code") or default_code(failure)
    if isinstance(failure, InkwellError):
        return failure.code
    return type(failure).__qualname__


def _codes(execution: ExecutionContext) -> list[str]:
    """The distinct ``extensions.code`` of the result's errors, in order."""
    result: Any = execution.result
    errors = getattr(result, "errors", None) or execution.pre_execution_errors or ()
    codes: dict[str, None] = {}
    for error in errors:
        code = (getattr(error, "extensions", None) or {}).get("code")
        codes[code if isinstance(code, str) else "INTERNAL_SERVER_ERROR"] = None
    return list(codes)
