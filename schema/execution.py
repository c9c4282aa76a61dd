"""Inkwell's graphql-core executor: Strawberry's, told about failed fields of a mutation.

A mutation field's own resolver is watched by ``AtomicMutation``, but an error can also be
raised further down, in its payload (a nested connection given a bad argument). graphql-core
reports every field error through ``handle_field_error`` before it completes the next mutation
field, so failing the transaction there stops the later fields from running at all.
Source: graphql-core ``Executor.handle_field_error``; Strawberry's ``execution_context_class``.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.context import Context


class InkwellExecutor(StrawberryGraphQLCoreExecutionContext):
    """Fails the operation's transaction (if it has one) on any field error."""

    def handle_field_error(self, raw_error: Exception, *args: Any, **kwargs: Any) -> None:
        context = self.context_value
        if isinstance(context, Context) and context.transaction is not None:
            context.transaction.fail()
        super().handle_field_error(raw_error, *args, **kwargs)
