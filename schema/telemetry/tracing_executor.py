"""Spans inside a planned query: one per level, and one per batch resolver call in it.

The breadth-first executor (``schema.engine.executor.run``) resolves the root fields, then
the operation level by level, each level's batch resolvers together. ``executor_class`` gives
a subclass of ``InkwellExecutor`` whose runs open a span around each level and each batch call
in it, so a trace shows where a query's time went and which statements (``tracing_sql``) each
level ran. The root fields get no span of their own (their statements hang from the
operation's span): a flat query, the commonest, then costs two spans, the operation's and its
statement's, where every span costs tens of microseconds (bench/RESULTS.md, "Tracing
overhead"). Only the schema built with tracing on uses it: the executor without tracing is
untouched. Operations graphql-core runs (mutations, introspection,
``QUERY_EXECUTOR=graphql-core``) get no spans of this kind; their statements hang from the
operation's span too.

Span names are bounded by the schema (``resolve Post.comments``) or fixed (``resolve level``);
the attributes are Inkwell's own (OpenTelemetry's GraphQL conventions stop at the operation):
``inkwell.graphql.level`` (1 for the fields below the root fields), ``inkwell.graphql.fields``
(a level's batch fields, ``Type.field``), ``inkwell.graphql.field`` (a batch call's) and
``inkwell.graphql.objects`` (the parent objects a level or a batch resolves for).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, StatusCode, Tracer
from opentelemetry.util.types import AnyValue

from schema.engine.execution import InkwellExecutor
from schema.engine.executor.completion import Work
from schema.engine.executor.plan import BATCH, FieldPlan
from schema.engine.executor.run import BreadthFirst

FIELD = "inkwell.graphql.field"
LEVEL = "inkwell.graphql.level"
FIELDS = "inkwell.graphql.fields"
OBJECTS = "inkwell.graphql.objects"


class TracedBreadthFirst(BreadthFirst):
    """``BreadthFirst`` with spans (the module docstring); ``tracer`` is set by
    ``executor_class``."""

    tracer: Tracer
    _depth = 0

    async def _run_level(self, level: list[Work]) -> None:
        self._depth += 1
        fields: dict[str, None] = {}
        objects = 0
        for selection, sources, _dicts, _positions in level:
            objects += len(sources)
            for field in selection.fields:
                if field.how == BATCH and field.batch_is_async:
                    fields[f"{selection.type_name}.{field.name}"] = None
        attributes: dict[str, AnyValue] = {
            LEVEL: self._depth,
            FIELDS: list(fields),
            OBJECTS: objects,
        }
        with self.tracer.start_as_current_span("resolve level", attributes=attributes):
            await super()._run_level(level)

    async def _batch(self, field: FieldPlan, sources: list[Any]) -> list[Any]:
        name = f"{field.parent_type.name}.{field.name}"
        attributes: dict[str, AnyValue] = {FIELD: name, LEVEL: self._depth, OBJECTS: len(sources)}
        with self.tracer.start_as_current_span(f"resolve {name}", attributes=attributes) as span:
            values = await super()._batch(field, sources)
            # A batch that failed as a whole is that one error for every source.
            if values and isinstance(values[0], Exception) and values[0] is values[-1]:
                _failed(span, values[0])
            return values


def _failed(span: Span, error: Exception) -> None:
    """Mark ``span`` failed with the error's code (``extensions.code`` of an Inkwell error) or
    class; the message stays out, as in the operation's span."""
    code = getattr(error, "code", None)
    kind = code if isinstance(code, str) else type(error).__qualname__
    span.set_attribute("error.type", kind)
    span.set_status(StatusCode.ERROR, kind)


def executor_class(tracer: Tracer) -> type[InkwellExecutor]:
    """An ``InkwellExecutor`` subclass whose planned queries open spans with ``tracer``: the
    schema's ``execution_context_class`` when tracing is on."""
    traced = type("TracedBreadthFirst", (TracedBreadthFirst,), {"tracer": tracer})
    return type("TracedExecutor", (InkwellExecutor,), {"breadth_first": traced})
