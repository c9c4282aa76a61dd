"""The body every subscription field shares: follow events, one unit of work per event.

graphql-core executes a subscription's selection once per event the resolver yields, with the
operation's context. Each event is read in a unit of work of its own: the resolver opens it
(re-checking the subscriber's credentials and loading the current row with the subscriber's
visibility), graphql-core resolves the nested fields in it, and ``UnitOfWork`` ends it once
the event's result is complete, before the result is sent (a slow client never holds a
pooled connection). An event the subscriber may not see is skipped without a word.

Subscribers who see the same rows (everyone anonymous; each signed-in user) share that unit of
work for one event (``SharedRead``): one session and one set of DataLoaders, whose batches
gather the keys of all of them, so a thousand subscribers to one post cost the statements of
one. Multiplexing subscribers with the same session variables is how Hasura serves live
queries.
Source: GraphQL spec, "Subscription" (MapSourceToResponseEvent); SQLAlchemy docs, "When do I
construct a Session" (a session per unit of work, never per connection); Hasura docs,
"Subscription execution" (multiplexing).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable

from schema.auth.tokens import token_subject
from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context, Info
from schema.live import metrics
from schema.live.broker import Delivery, Match
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
        async for delivery in subscription:
            try:
                token = bearer_token(ctx.authorization)
                user_id = token_subject(ctx.settings, token) if token is not None else None
                ctx.join(SharedRead.enter(ctx, delivery, user_id))
                ctx.viewer = ctx.reader.viewer = await authenticate(ctx, token)
                item = await resolve(delivery.event)
            except BaseException:
                await ctx.end_unit_of_work()
                raise
            if item is None:
                await ctx.end_unit_of_work()
                continue
            metrics.EVENT_LAG.observe(time.monotonic() - delivery.received)
            yield item


class SharedRead:
    """The unit of work in which the subscribers with one viewer (``key``: a user id, or
    ``None`` for anonymous) read one delivery: a context of its own, closed when the last of
    them leaves. Its viewer is theirs, so its DataLoaders apply their visibility."""

    def __init__(self, delivery: Delivery, key: Hashable, context: Context) -> None:
        self.context = context
        self._delivery = delivery
        self._key = key
        self._readers = 0

    @classmethod
    def enter(cls, ctx: Context, delivery: Delivery, key: Hashable) -> SharedRead:
        """The delivery's shared read for ``key`` (created if there is none), counting
        ``ctx`` in."""
        shared: SharedRead | None = delivery.readers.get(key)
        if shared is None:
            context = Context(
                ctx.settings, ctx.sessionmaker, broker=ctx.broker, viewers=ctx.viewers
            )
            shared = delivery.readers[key] = cls(delivery, key, context)
        shared._readers += 1
        return shared

    async def leave(self) -> None:
        """Count one reader out; the last one closes the unit of work."""
        self._readers -= 1
        if self._readers > 0:
            return
        if self._delivery.readers.get(self._key) is self:
            del self._delivery.readers[self._key]
        await self.context.close()
