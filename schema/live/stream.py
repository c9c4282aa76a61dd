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

Every event is in the outbox (``schema.live.outbox``), with an id in commit order that each
result carries (``extensions.eventId``). A subscriber that passes the last id it saw
(``afterEventId``) first gets what it missed, read from the outbox, then the live events,
each once (an event both read and received is skipped the second time, by its id); a
subscriber whose queue overflowed while its client was reading does the same from its own
last event (``Gap``).
Source: GraphQL spec, "Subscription" (MapSourceToResponseEvent); SQLAlchemy docs, "When do I
construct a Session" (a session per unit of work, never per connection); Hasura docs,
"Subscription execution" (multiplexing); the HTML Standard, "Server-sent events"
(``Last-Event-ID``: resuming a stream after the last event id seen).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Any

from schema.auth.tokens import token_subject
from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context, Info
from schema.errors import BadUserInput, InkwellError
from schema.live import metrics, outbox
from schema.live.broker import GAP, Delivery, Match
from schema.live.events import Event, EventKind

#: Turns an event into what the subscription yields (``None``: not for this subscriber).
type Resolve[T] = Callable[[Event], Awaitable[T | None]]


class EventsExpired(InkwellError):
    """A subscription asked to resume after an event the outbox no longer keeps."""

    code = "EVENTS_EXPIRED"

    def __init__(self, event_id: int, retention: float) -> None:
        super().__init__(
            f"Event {event_id} is older than the {retention:g} s events are kept: reload what "
            "this subscription shows, then subscribe without afterEventId.",
            eventId=str(event_id),
            retentionSeconds=retention,
        )


def parse_event_id(value: str | None, argument: str = "afterEventId") -> int | None:
    """An event id a client sent back (the decimal ``extensions.eventId`` of a result), or
    ``None``. Raises ``BadUserInput`` for anything else."""
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise BadUserInput(f"{argument} is not an event id.", argument=argument)
    return int(value)


async def follow[T](
    info: Info, kind: EventKind, match: Match, resolve: Resolve[T], after: int | None = None
) -> AsyncGenerator[T, None]:
    """Yield ``resolve(event)`` for each committed event of ``kind`` that ``match``es,
    skipping events it returns ``None`` for, until the client unsubscribes; given ``after``
    (an event id; over Server-Sent Events, the ``Last-Event-ID`` header is taken for it),
    first those committed after it.

    Raises ``EventsExpired`` when ``after`` is no longer kept, ``BadUserInput`` when no event
    has that id, ``SubscriptionOverflow`` when the subscriber's client stopped reading while
    its queue filled, and ``AuthenticationFailed`` once its credentials stop being valid
    (expired, or the account was deactivated or deleted): the subscription then ends with
    that error.
    """
    ctx: Context = info.context
    if ctx.broker is None:
        raise RuntimeError("no event broker: the app's lifespan did not run")
    if after is None and (resumed := _last_event_id(ctx)) is not None:
        after = parse_event_id(resumed, "Last-Event-ID")
    maxsize, stall = ctx.settings.subscription_queue_size, ctx.settings.subscription_stall_seconds
    with ctx.broker.subscribe(kind, match, maxsize, stall) as subscription:
        # Subscribed before anything is read back, so nothing falls between the two.
        if after is not None:
            found = await ctx.run(lambda session: outbox.kept(session, after))
            if found is None:
                raise BadUserInput(
                    "No event has the id given as afterEventId.", argument="afterEventId"
                )
            if not found:
                raise EventsExpired(after, ctx.settings.event_retention_seconds)
        # The unit of work that checked the credentials at subscribe time ends here: an idle
        # subscription holds no session (nor, on PostgreSQL, a pooled connection).
        await ctx.end_unit_of_work()
        position = after  # the last event id handled (``None``: none yet)
        behind = after is not None  # events after ``position`` are only in the outbox
        while True:
            if behind and position is None:
                # A gap before this subscriber handled any event: it missed what followed
                # its subscribing.
                position = subscription.start or 0
            if behind and (held := ctx.broker.recent(position or 0, kind)) is not None:
                # Still in this process's memory: the same deliveries (and shared reads) as
                # the subscribers who kept up.
                behind, deliveries = False, [d for d in held if match(d.event)]
                position = held[-1].event.event_id if held else position
            elif behind:
                missed = await _read_back(ctx, kind, position or 0)
                behind = len(missed) == outbox.READ_BATCH
                deliveries = [Delivery(e) for e in missed if match(e)]
                metrics.EVENTS_READ_BACK.labels("subscriber").inc(len(deliveries))
                position = missed[-1].event_id if missed else position
            else:
                got = await anext(subscription, None)
                if got is None:
                    return
                if got is GAP:
                    behind = True
                    continue
                assert isinstance(got, Delivery)
                if position is not None and got.event.event_id <= position:
                    continue  # read back already
                position, deliveries = got.event.event_id, [got]
            for delivery in deliveries:
                item = await _resolve(ctx, delivery, resolve)
                if item is None:
                    continue
                metrics.EVENT_LAG.observe(time.monotonic() - delivery.received)
                ctx.event_id = delivery.event.event_id
                subscription.given()
                yield item
                subscription.taken()
                ctx.event_id = None


def _last_event_id(ctx: Context) -> str | None:
    """The ``Last-Event-ID`` header of a Server-Sent Events request (an ``EventSource``
    reconnecting sends the last ``id`` it received: ``schema.transport.streams``)."""
    headers = getattr(ctx.request, "headers", None)
    return headers.get("last-event-id") if headers is not None else None


async def _read_back(ctx: Context, kind: EventKind, after: int) -> list[Event]:
    """The outbox's events of ``kind`` after ``after`` (a batch), in a unit of work that ends
    with the read."""
    try:
        return await ctx.run(lambda session: outbox.read_after(session, after, kind))
    finally:
        await ctx.end_unit_of_work()


async def _resolve[T](ctx: Context, delivery: Delivery, resolve: Resolve[T]) -> T | None:
    """``resolve`` the delivery's event in the unit of work shared by the subscribers with
    this one's viewer; the unit of work is ended here unless there is a result to complete
    (``UnitOfWork`` ends it then)."""
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
    return item


class SharedRead:
    """The unit of work in which the subscribers with one viewer (``key``: a user id, or
    ``None`` for anonymous) read one delivery: a context of its own, closed when the last of
    them leaves. Its viewer is theirs, so its DataLoaders apply their visibility."""

    def __init__(self, delivery: Delivery, key: Hashable, context: Context) -> None:
        self.context = context
        #: Results of the subscribers' operations for this event, by what makes them equal
        #: (``schema.engine.shared_results``): computed once, sent to each.
        self.results: dict[Hashable, Any] = {}
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
