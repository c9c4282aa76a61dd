"""Marks an anonymous query's response as one the response cache may keep."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.context import Context


class CacheableResponse(SchemaExtension):
    """For a request the view looked up in the response cache (``Context.cache_lookup``,
    ``schema.transport.cached_responses``), once its operation is known to be a query with
    no viewer, sets the tables its response reads (``ResponseCache.tables_read``): the view
    then caches the response if it has no errors. Mutations, subscriptions and signed-in
    operations are never marked, nor is a request whose variables include one its operation
    does not declare: graphql-core ignores it, so each new value would be a new entry with
    the same response (the key holds the variables as sent).

    Uses ``Schema._schema`` (graphql-core's schema, as ``QueryLimits`` does): the document is
    walked against it once per document.
    """

    def on_execute(self) -> Iterator[None]:
        # A plain generator: it awaits nothing.
        execution = self.execution_context
        context = execution.context
        if (
            isinstance(context, Context)
            and context.cache_lookup is not None
            and context.response_cache is not None
            and context.viewer is None
            and execution.operation_type is OperationType.QUERY
            and execution.graphql_document is not None
            and _declares_all(
                execution.graphql_document, execution.operation_name, execution.variables
            )
        ):
            lookup = context.cache_lookup
            lookup.tables = context.response_cache.tables_read(
                lookup.document,
                execution.graphql_document,
                execution.schema._schema,
            )
        yield


def _declares_all(document: DocumentNode, operation_name: str | None, variables: Any) -> bool:
    """Whether every variable sent (``variables``: a dict or ``None``) is declared by the
    operation ``document`` runs (named ``operation_name``, or its only one)."""
    if not variables:
        return True
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return False
    declared = {d.variable.name.value for d in operation.variable_definitions or ()}
    return declared.issuperset(variables)
