"""The body every subscription field shares: follow events, one unit of work per event.

graphql-core executes a subscription's selection once per event the resolver yields, with the
operation's context. Each event is read in a unit of work of its own: the resolver opens it
(re-checking the subscriber's credentials and loading the current row with the subscriber's
visibility), graphql-core resolves the nested fields in it, and ``UnitOfWork`` ends it once
the event's result is complete, before the result is sent (a slow client never holds a
pooled connection). An event the subscriber may not see is skipped without a word.
Source: GraphQL spec, "Subscription" (MapSourceToResponseEvent); SQLAlchemy docs, "When do I
construct a Session" (a session per unit of work, never per connection).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context, Info
from schema.live.broker import Match
from schema.live.events import Event, EventKind

#: Turns an event into what the subscription yields (``None``: not for this subscriber).
type Resolve[T] = Callable[[Event], Awaitable[T | None]]


async def follow[T](
    info: Info, kind: EventKind, match: Match, resolve: Resolve[T]
) -> AsyncGenerator[T, None]:
    """Yield ``resolve(event)`` for each committed event of ``kind`` that ``match``es,
    skipping events it returns ``None`` for, until the client unsubscribes.

    Raises ``SubscriptionOverflow`` when the subscriber fell a whole queue behind, and
    ``AuthenticationFailed`` once its credentials stop being valid (expired, or the account
    was deactivated or deleted): the subscription then ends with that error.
    """
    ctx: Context = info.context
    if ctx.broker is None:
        raise RuntimeError("no event broker: the app's lifespan did not run")
    maxsize = ctx.settings.subscription_queue_size
    with ctx.broker.subscribe(kind, match, maxsize) as subscription:
        # The unit of work that checked the credentials at subscribe time ends here: an idle
        # subscription holds no session (nor, on PostgreSQL, a pooled connection).
        await ctx.end_unit_of_work()
        async for event in subscription:
            try:
                ctx.viewer = await authenticate(ctx, bearer_token(ctx.authorization))
                item = await resolve(event)
            except BaseException:
                await ctx.end_unit_of_work()
                raise
            if item is None:
                await ctx.end_unit_of_work()
                continue
            yield item
