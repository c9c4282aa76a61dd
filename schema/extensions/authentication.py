"""Sets the operation's viewer from the request's bearer token before execution."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context


class Authentication(SchemaExtension):
    """Resolves the operation's credentials (``Authorization: Bearer <token>``, or a
    WebSocket's ``connection_init`` ``authorization``) to ``context.viewer`` (or anonymous).

    Runs after parsing and validation, so a malformed document is reported as such. Bad
    credentials fail the whole request with one ``UNAUTHENTICATED`` error and ``data: null``,
    before any resolver runs: execution is skipped by setting the result up front (the hook
    Strawberry offers extensions for answering without executing). Unexpected failures (the
    database is down) go the same way and are masked like any other.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        # Nothing to do for an operation already refused (``QueryLimits``).
        if isinstance(context, Context) and self.execution_context.result is None:
            try:
                context.viewer = await authenticate(context, bearer_token(context.authorization))
            except Exception as exc:
                self.execution_context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(str(exc), original_error=exc)]
                )
        yield
