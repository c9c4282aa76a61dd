"""A deadline for each operation's execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.errors import RequestTimeout


class Deadline(SchemaExtension):
    """Stops a query or mutation whose execution runs past ``seconds``: the result is one
    ``REQUEST_TIMEOUT`` error and ``data: null``; a mutation's transaction rolls back (the
    transaction extension sees the cancellation). A statement in flight finishes first
    (``Context.run`` never abandons one mid-way); on PostgreSQL ``statement_timeout``
    (``DB_STATEMENT_TIMEOUT_SECONDS``) bounds it. Subscriptions are not bounded: they last as
    long as the client follows them.
    Source: asyncio docs, ``asyncio.timeout``; PostgreSQL docs, "statement_timeout".
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def on_execute(self) -> AsyncIterator[None]:
        if self.execution_context.operation_type is OperationType.SUBSCRIPTION:
            yield
            return
        try:
            async with asyncio.timeout(self.seconds):
                yield
        except TimeoutError:
            raise RequestTimeout(self.seconds) from None
