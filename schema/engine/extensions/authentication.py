"""Sets the operation's viewer from the request's bearer token before execution."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context
from schema.writes.viewer_check import authenticate_mutation


class Authentication(SchemaExtension):
    """Resolves the operation's credentials (``Authorization: Bearer <token>``, or a
    WebSocket's ``connection_init`` ``authorization``) to ``context.viewer`` (or anonymous).

    Runs after parsing and validation (and after ``QueryLimits``), so a malformed document is
    reported as such. Bad credentials fail the whole request with one ``UNAUTHENTICATED``
    error and ``data: null``, before any resolver runs: the error is raised from this hook,
    which Strawberry turns into the operation's result (over HTTP and WebSocket alike).
    Unexpected failures (the database is down) go the same way and are masked like any
    other. A mutation's viewer may come from the viewer cache, confirmed by the mutation's
    first statement in its transaction (``schema.writes.viewer_check``).
    """

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            # A failure is raised, not set as the result: Strawberry's subscription path
            # ignores a preset result, but turns an error raised here into the one result.
            token = bearer_token(context.authorization)
            if self.execution_context.operation_type is OperationType.MUTATION:
                context.viewer = await authenticate_mutation(context, token)
            else:
                context.viewer = await authenticate(context, token)
        yield
