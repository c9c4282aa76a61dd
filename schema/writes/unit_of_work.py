"""Closes the operation's session when the operation ends, on every path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.context import Context


class UnitOfWork(SchemaExtension):
    """Ends the operation's unit of work.

    The session is opened lazily by the first resolver that needs it; whatever happens after
    (success, a resolver error, a cancelled request), it is closed here, which rolls back
    anything not committed and returns its connection to the pool before the response is sent.
    A subscription's operation lasts as long as the client follows it, so its unit of work
    ends after each event instead (``on_stream_result``).
    """

    def on_execute(self) -> Iterator[None]:
        # Outermost, so before anything opens the session: a query's unit of work reads
        # without BEGIN/ROLLBACK round trips where the database allows it (``Context``).
        # A plain generator: it awaits nothing, and an async one costs more to run.
        context = self.execution_context.context
        if isinstance(context, Context):
            context.read_only = self.execution_context.operation_type is OperationType.QUERY
        yield

    async def on_stream_result(self, result: object) -> AsyncIterator[None]:
        # A subscription reads each event in a unit of work of its own: end it as soon as the
        # event's result is complete, before it is sent (a slow client holds no connection).
        context = self.execution_context.context
        if isinstance(context, Context):
            await context.end_unit_of_work()
        yield

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context = self.execution_context.context
            if isinstance(context, Context):
                await context.close()
