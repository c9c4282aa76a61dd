"""The schema extension that fills the current ``Operation`` from what Strawberry knows.

Outermost of the schema's extensions, so it exits last: after the unit of work has closed
and unexpected errors have been masked, with the result the client gets. It records the
operation's type and name (and the name's metric label, ``schema.telemetry.names``), the
viewer, the error codes and the SQL statements the operation ran (its ``Context.sql``, bound
for the whole operation, so statements are counted whether or not ``SQL_STATS`` reports
them). Over HTTP the record is the request's (``schema.telemetry.http`` ends and reports
it); over a WebSocket each operation gets a record of its own, with the connection's request
id, reported here when the operation ends (a subscription: when it ends).
Source: Strawberry docs, "Extensions" (``on_operation``).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from db.stats import SqlStats
from schema.context import Context
from schema.engine.extensions.masking import default_code
from schema.telemetry.names import UNKNOWN, OperationNames
from schema.telemetry.operation import MAX_NAME, Operation, current, request_id
from schema.telemetry.report import finish


class ObserveOperation(SchemaExtension):
    """Fills the current operation's record (see the module); ``names`` labels names for the
    metrics."""

    def __init__(self, names: OperationNames) -> None:
        self.names = names

    def on_operation(self) -> Iterator[None]:
        record = current()
        own = record is None or record.connection
        token = None
        if own:
            # A WebSocket's operation (or one run on the schema directly, in tests).
            rid = record.request_id if record is not None else request_id(None)
            record = Operation(rid, "ws" if record is not None else "direct")
            token = record.enter()
        assert record is not None
        context = self.execution_context.context
        sql = context.sql if isinstance(context, Context) else None
        bound = sql.bind() if sql is not None else None
        try:
            yield
        except Exception as exc:
            # Raised from a hook (a persisted query refused, bad credentials, a syntax error):
            # the error the client gets is made from it, as here, after this hook has ended.
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            record.add_error_code((error.extensions or {}).get("code") or default_code(error))
            raise
        finally:
            if bound is not None:
                SqlStats.unbind(bound)
            self._fill(record, context, sql)
            if token is not None:
                finish(record)
                Operation.leave(token)

    def _fill(self, record: Operation, context: object, sql: SqlStats | None) -> None:
        execution = self.execution_context
        try:
            kind: str | None = execution.operation_type.value
        except Exception:  # no document (it did not parse), or no such operation in it
            kind = None
        name = execution.operation_name if isinstance(execution.operation_name, str) else None
        result = execution.result
        errors = getattr(result, "errors", None) or ()
        executed = kind is not None and (
            not execution.pre_execution_errors or getattr(result, "data", None) is not None
        )
        record.kind = kind
        record.name = name[:MAX_NAME] if name is not None else None
        record.name_label = self.names.label(name, executed=executed) if kind else UNKNOWN
        for error in errors:
            record.add_error_code((error.extensions or {}).get("code"))
        if isinstance(context, Context) and context.viewer is not None:
            record.viewer_id = context.viewer.id
        if sql is not None:
            record.sql_statements = sql.statements
            record.sql_ms = sql.duration_ms
