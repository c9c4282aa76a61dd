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
    Over a stream (WebSocket, Server-Sent Events, multipart) it ends as soon as each result is
    complete, before it is sent (``on_stream_result``). A subscription's operation lasts as
    long as the client follows it: its own unit of work ends once it has subscribed, and each
    event is read in one of the event's (``schema.live.prepared``).
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
        # End it as soon as the result is complete, before it is sent (a slow client holds no
        # connection). A subscription's event results were read elsewhere: nothing to end.
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
