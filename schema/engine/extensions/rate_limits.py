"""Charges each operation's estimated cost to its viewer's token bucket, before it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension

from schema.context import Context
from schema.engine.rate_limits import limits_of


class RateLimit(SchemaExtension):
    """Charges the operation (``schema.engine.rate_limits``: one point plus its estimated
    rows, ``Context.cost``) to the signed-in viewer's bucket, or the anonymous client's
    address's, once ``QueryLimits`` has measured it and ``Authentication`` has found the
    viewer; over the limit the operation fails with ``RATE_LIMITED`` before anything runs
    (raised from this hook, like ``Authentication``'s refusals: over HTTP and WebSocket
    alike, and for a subscription once, when it starts). ``build_schema`` adds it only when
    ``RATE_LIMIT_POINTS`` is set, so without a limit no operation pays anything for it.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and (limits := limits_of(context)) is not None:
            await limits.charge_operation(context)
        yield
