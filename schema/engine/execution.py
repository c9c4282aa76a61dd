"""Inkwell's graphql-core executor: query operations run breadth-first from a cached plan.

Strawberry stays in charge of parsing, validation and the extension pipeline; this class is
its ``execution_context_class``. For a query whose plan holds (``schema.engine.executor.plan``) it
resolves each level of the operation with one batch call per field (``schema.engine.executor.run``)
instead of graphql-core's awaitable per field per object; anything else (mutations,
subscriptions, introspection, fields without a batch resolver, or ``QUERY_EXECUTOR=graphql-core``)
takes graphql-core's own path, unchanged.

It also fails a mutation's transaction on any field error: a mutation field's own resolver is
watched by ``AtomicMutation``, but an error can also be raised further down, in its payload (a
nested connection given a bad argument). graphql-core reports every field error through
``handle_field_error`` before it completes the next mutation field, so failing the transaction
there stops the later fields from running at all.
Source: graphql-core ``Executor.execute_collected_root_fields`` and ``handle_field_error``;
Strawberry's ``execution_context_class``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    DocumentNode,
    ExecutionResult,
    Executor,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationType,
)
from graphql.execution.collect_fields import DeferUsage, FieldDetails
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.context import Context
from schema.engine.executor.plan_cache import PlanCache
from schema.engine.executor.run import BreadthFirst
from schema.live.prepared import EventExecutors

#: Distinct (operation, @skip/@include values) plans kept per schema.
PLANS = 1024

_plans: WeakKeyDictionary[GraphQLSchema, PlanCache] = WeakKeyDictionary()


class InkwellExecutor(StrawberryGraphQLCoreExecutionContext):
    """Runs planned queries breadth-first; fails the operation's transaction (if it has one)
    on any field error."""

    #: What runs a plan (a subclass with spans when tracing is on: ``schema.telemetry``).
    breadth_first: type[BreadthFirst] = BreadthFirst

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[GraphQLError] | Executor:
        """graphql-core's, with ``hide_suggestions`` when the operation's settings have
        introspection off: a variable's value that does not coerce ("Value 'DRAFTS' does
        not exist in 'PostStatus' enum") then names no other value of the schema, as
        validation's errors do not (``ValidatedDocuments``). Strawberry passes no such option."""
        if isinstance(context_value, Context) and not context_value.settings.introspection_enabled:
            kwargs["hide_suggestions"] = True
        built = super().build(schema, document, root_value, context_value, *args, **kwargs)
        if (
            isinstance(context_value, Context)
            and context_value.event_executors is None
            and not isinstance(built, list)
            and built.operation.operation is OperationType.SUBSCRIPTION
        ):
            # Each event's result is made ahead of the subscriber (``schema.live.prepared``),
            # by an executor built for it: graphql-core's build, with the options above
            # (``kwargs``), not this one again, which would set up the event's context too.
            def build_for(event: Any, context: Context) -> Executor:
                made = super(InkwellExecutor, cls).build(
                    schema, document, event, context, *args, **kwargs
                )
                assert not isinstance(made, list), "the subscription's variables changed"
                return made

            context_value.event_executors = EventExecutors(
                build_for, built.operation, built.variable_values.coerced
            )
        return built

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core hands resolvers helpers bound to the executor, which the executor
        # holds: a reference cycle through everything it reaches (the context, the request,
        # the loaders), so each operation's objects waited for the cyclic collector instead
        # of being freed when it ended. The same helpers through a weak reference.
        executor = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: _alive(executor).gather_async_work(values),
            track=lambda values: _alive(executor).track_async_work(values),
        )

    def execute_collected_root_fields(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: dict[str, list[FieldDetails]],
        serially: bool,
        new_defer_usages: Sequence[DeferUsage],
    ) -> Any:
        context = self.context_value
        if (
            self.operation.operation is OperationType.QUERY
            and not serially
            and isinstance(context, Context)
            and context.settings.breadth_first
            and self.error_propagation
            and not (self.middleware_manager and self.middleware_manager.middlewares)
        ):
            cache = _plans.get(self.schema)
            if cache is None:
                cache = _plans[self.schema] = PlanCache(PLANS)
            plan = cache.get(self, root_type)
            if plan is not None:
                return self.breadth_first(self, plan).run()
        return super().execute_collected_root_fields(
            root_type, root_value, grouped_field_set, serially, new_defer_usages
        )

    def execute_operation(self, serially: bool | None = None) -> Any:
        # A subscription's event whose result was made when it arrived, once for every
        # subscriber of its audience (``schema.live.prepared``): this subscriber's copy.
        context = self.context_value
        if isinstance(context, Context) and context.prepared is not None:
            return _own_result(context.prepared)
        return super().execute_operation(serially)

    def handle_field_error(self, raw_error: Exception, *args: Any, **kwargs: Any) -> None:
        context = self.context_value
        if isinstance(context, Context) and context.transaction is not None:
            context.transaction.fail()
        super().handle_field_error(raw_error, *args, **kwargs)


def _own_result(made: ExecutionResult) -> ExecutionResult:
    """One subscriber's copy of a result made for its audience: the same data (never changed
    once made), and errors of its own, which masking may rewrite."""
    errors = None
    if made.errors:
        errors = [
            GraphQLError(
                e.message,
                e.nodes,
                e.source,
                e.positions,
                e.path,
                e.original_error,
                dict(e.extensions) if e.extensions else None,
            )
            for e in made.errors
        ]
    return ExecutionResult(data=made.data, errors=errors)


def _alive(executor: weakref.ref[InkwellExecutor]) -> InkwellExecutor:
    found = executor()
    assert found is not None, "a resolver outlived its operation's executor"
    return found
