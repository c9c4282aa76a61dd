"""The body every subscription field shares: follow events, each result made as it arrives.

graphql-core executes a subscription's selection once per event the resolver yields. Each
event's result is made as soon as the event reaches the process, once for every subscriber
with the same credentials, operation and variables, in a unit of work of its own that ends
when the result is complete (``schema.live.prepared``): the subscriber's credentials are
checked again and the current row loaded with its visibility, the nested fields resolved,
and the session closed before anything is sent, so a slow client never holds a pooled
connection. The subscriber only sends. An event the subscriber may not see is skipped
without a word.

Every event is in the outbox (``schema.live.outbox``), with an id in commit order that each
result carries (``extensions.eventId``). A subscriber that passes the last id it saw
(``afterEventId``) first gets what it missed, read from the outbox, then the live events,
each once (an event both read and received is skipped the second time, by its id); a
subscriber whose queue overflowed while its client was reading does the same from its own
last event (``Gap``).
Source: GraphQL spec, "Subscription" (MapSourceToResponseEvent); SQLAlchemy docs, "When do I
construct a Session" (a session per unit of work, never per connection); the HTML Standard,
"Server-sent events" (``Last-Event-ID``: resuming a stream after the last event id seen).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from schema.context import Context, Info
from schema.errors import BadUserInput, InkwellError
from schema.live import metrics, outbox
from schema.live.events import Event, EventKind
from schema.live.prepared import Preparer, Resolve
from schema.live.subscription import GAP, Delivery, Match

#: Results of events read back started ahead of the one a subscriber waits for.
READ_AHEAD = 4


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
    """Yield ``resolve(ctx, event)`` for each committed event of ``kind`` that ``match``es,
    skipping events it returns ``None`` for, until the client unsubscribes; given ``after``
    (an event id; over Server-Sent Events, the ``Last-Event-ID`` header is taken for it),
    first those committed after it. ``resolve`` reads in the context it is given (the
    event's shared unit of work), never in ``info.context``.

    Raises ``EventsExpired`` when ``after`` is no longer kept, ``BadUserInput`` when no event
    has that id, ``SubscriptionOverflow`` when the subscriber's client stopped reading while
    its queue filled, and ``AuthenticationFailed`` once its credentials stop being valid
    (expired, or the account was deactivated or deleted): the subscription then ends with
    that error.
    """
    ctx: Context = info.context
    if ctx.broker is None or ctx.event_executors is None:
        raise RuntimeError("no event broker, or not a subscription's executor")
    if after is None and (resumed := _last_event_id(ctx)) is not None:
        after = parse_event_id(resumed, "Last-Event-ID")
    maxsize, stall = ctx.settings.subscription_queue_size, ctx.settings.subscription_stall_seconds
    preparer = Preparer(ctx, ctx.event_executors, resolve)
    with ctx.broker.subscribe(kind, match, maxsize, stall, preparer) as subscription:
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
                # Still in this process's memory: the same deliveries (and results) as the
                # subscribers who kept up.
                behind, deliveries, live = False, [d for d in held if match(d.event)], False
                position = held[-1].event.event_id if held else position
            elif behind:
                missed = await _read_back(ctx, kind, position or 0)
                behind = len(missed) == outbox.READ_BATCH
                deliveries, live = [Delivery(e) for e in missed if match(e)], False
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
                    preparer.dropped(got)
                    continue  # read back already
                position, deliveries, live = got.event.event_id, [got], True
            # Deliveries read back were never offered to this subscription: their results
            # are started a few ahead of the one it waits for (not all at once: others'
            # live events wait behind them for ``Broker.reading``).
            started = 1 if live else 0
            for index, delivery in enumerate(deliveries):
                while started < min(len(deliveries), index + READ_AHEAD):
                    preparer.offered(deliveries[started])
                    started += 1
                outcome = await preparer.take(delivery)
                if outcome is None:
                    continue
                item, result = outcome
                metrics.EVENT_LAG.observe(time.monotonic() - delivery.received)
                ctx.event_id, ctx.prepared = delivery.event.event_id, result
                subscription.given()
                yield item
                subscription.taken()
                ctx.event_id = ctx.prepared = None


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
