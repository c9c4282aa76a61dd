"""Fan-out of committed events to the process's subscriptions, each with a bounded queue.

A ``Broker`` has two sides. Writers hand it the events of a transaction twice: ``stage``
inside the transaction, just before COMMIT (which writes them to the outbox,
``schema.live.outbox``, and returns them with their event ids), and ``committed`` after it; a
rolled-back transaction's events are never handed over, and its outbox rows never exist.
Subscribers ``subscribe`` to one kind of event and read their own queue. ``deliver`` puts an
event into the queue of every matching subscription without ever waiting, so a subscriber
that falls behind delays nobody. A queue that overflows is not the end of a subscription
whose client is reading: its events are all in the outbox, so it is told it has a gap
(``Gap``) and reads what it missed from there. Only a subscription whose client has not
taken its last result for ``stall`` seconds (``SUBSCRIPTION_STALL_SECONDS``) when its queue
overflows is ended, with ``SubscriptionOverflow``.

``InProcessBroker`` delivers at ``committed``: the SQLite deployment is one process.
``schema.live.postgres.PostgresBroker`` signals the commit with ``pg_notify`` at ``stage``
and delivers what it then reads from the outbox, so every server process on the database
sees every commit, in commit order.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schema.errors import InkwellError
from schema.live import metrics, outbox
from schema.live.events import Event, EventKind

#: Deliveries each process keeps after fanning them out (``Broker.recent``).
RECENT = 4096

#: Event results a process makes at once (``Broker.reading``): each holds a session, and on
#: PostgreSQL a pooled connection, while it reads; the rest of the pool is the requests'.
READING = 8

#: A subscription's filter, applied when an event is delivered (cheap: no I/O).
Match = Callable[[Event], bool]


class SubscriptionOverflow(InkwellError):
    """The subscriber's client stopped reading while more than its queue's length of events
    came, so its subscription was ended (others are not held up by it); subscribe again with
    ``afterEventId`` (or reload what it shows)."""

    code = "SUBSCRIPTION_OVERFLOW"

    def __init__(self, maxsize: int) -> None:
        super().__init__(
            f"This subscription's client stopped reading while more than {maxsize} events "
            "came, and it was ended; subscribe again, with afterEventId set to the last "
            "event id you received.",
            maxsize=maxsize,
        )


class Gap:
    """What a subscription yields after its queue overflowed while its client was reading:
    events were dropped here, and the subscriber reads them from the outbox (every
    delivery after it is newer than they are, or a duplicate of one of them)."""


#: The one ``Gap`` (it carries nothing).
GAP = Gap()


@dataclass(eq=False)
class Delivery:
    """One event as this process fans it out: the same object reaches every subscription.

    ``readers`` and ``prepared`` are for the subscribers' use (``schema.live.prepared`` keeps
    the units of work it reads in and the results it makes there, by audience), and go
    when the delivery does.
    """

    event: Event
    readers: dict[Hashable, Any] = field(default_factory=dict)
    prepared: dict[Hashable, Any] = field(default_factory=dict)
    #: When it reached this process (``time.monotonic()``): the event lag's start.
    received: float = field(default_factory=time.monotonic)


class Watcher(Protocol):
    """Told which deliveries a subscription's queue holds (``schema.live.prepared.Preparer``
    starts their results as they arrive)."""

    def offered(self, delivery: Delivery) -> None:
        """``delivery`` was queued (no I/O, never waits)."""

    def dropped(self, delivery: Delivery) -> None:
        """``delivery`` left the queue untaken (overflow, or the subscription ended)."""


class Subscription:
    """One subscriber's bounded queue of deliveries; an async iterator of them (and of
    ``GAP`` where its queue overflowed).

    Iteration ends when the broker stops (after the events already queued) and raises
    ``SubscriptionOverflow`` at once when the queue overflowed while the client was not
    reading (``taken``/``given`` say when the subscriber last handed a result over, and took
    the next). Use it as a context manager, or call ``close``, to unsubscribe.
    """

    def __init__(
        self,
        broker: Broker,
        kind: EventKind,
        match: Match,
        maxsize: int,
        stall: float,
        watcher: Watcher | None = None,
    ) -> None:
        self.kind = kind
        self._watcher = watcher
        self._stall = stall
        self._broker = broker
        self._match = match
        self._maxsize = maxsize
        self._queue: deque[Delivery | Gap] = deque()
        self._ready = asyncio.Event()
        self._ended: BaseException | None = None
        #: The last event id before this subscription's first event: the broker's last
        #: delivery when it subscribed, else the id before the first event offered to it.
        self.start: int | None = broker.last_delivered
        #: Since when (``time.monotonic()``) the subscriber's last result has been waiting
        #: to be sent; ``None`` while it is working on one.
        self._given: float | None = None

    def given(self) -> None:
        """The subscriber handed a result to its client's connection (and waits for it to
        be sent before taking the next)."""
        self._given = time.monotonic()

    def taken(self) -> None:
        """The subscriber's client took the last result: the subscriber is working again."""
        self._given = None

    def stalled(self) -> bool:
        """Whether the client has left the last result untaken for ``stall`` seconds."""
        given = self._given
        return given is not None and time.monotonic() - given > self._stall

    def offer(self, delivery: Delivery) -> None:
        """Queue ``delivery`` if its event matches; never waits. On overflow the queue is
        dropped: the subscription ends if its client is not reading, else it gets a
        ``GAP``, and the subscriber reads what was dropped from the outbox."""
        if self.start is None:
            self.start = delivery.event.event_id - 1
        if self._ended is not None or not self._match(delivery.event):
            return
        if len(self._queue) >= self._maxsize:
            self._drop_queued()
            if self.stalled():
                metrics.SUBSCRIPTIONS_OVERFLOWED.inc()
                self.end(SubscriptionOverflow(self._maxsize))
                return
            metrics.SUBSCRIPTION_GAPS.inc()
            self._queue.append(GAP)
        self._queue.append(delivery)
        if self._watcher is not None:
            self._watcher.offered(delivery)
        self._ready.set()

    def _drop_queued(self) -> None:
        queued, self._queue = self._queue, deque()
        if self._watcher is not None:
            for item in queued:
                if isinstance(item, Delivery):
                    self._watcher.dropped(item)

    def end(self, error: BaseException | None = None) -> None:
        """End the subscription: unsubscribed, woken, and finishing (with ``error``, if
        given, else after the queued events)."""
        if self._ended is None:
            self._ended = error or StopAsyncIteration()
            self._broker._remove(self)
            if error is not None:
                self._drop_queued()  # never taken now
            self._ready.set()

    def close(self) -> None:
        """Unsubscribe (idempotent); what is still queued is not taken."""
        self.end()
        self._drop_queued()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Delivery | Gap:
        while not self._queue:
            if self._ended is not None:
                raise self._ended
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class Feed(Protocol):
    """What listens on a channel of its own through the broker's LISTEN connection."""

    async def connected(self, connection: Any) -> None:
        """LISTEN is up on ``connection`` (an asyncpg connection), or it passed a health
        check; may query it (an error counts as the connection failing)."""

    def notified(self, payload: str) -> None:
        """A notification on the feed's channel (no I/O: it runs in asyncpg's callback)."""

    def disconnected(self) -> None:
        """The connection is lost: notifications sent from now until the next ``connected``
        will never arrive."""


class Broker:
    """The process's subscriptions by kind, and the delivery of events to them.

    Subclasses decide how a committed transaction's events reach ``deliver`` (see the
    module's docstring). All methods run on the event loop's thread.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[EventKind, set[Subscription]] = defaultdict(set)
        #: The last deliveries fanned out, oldest first, so that a subscriber behind reads
        #: them from here (sharing their reads with the others) rather than the outbox.
        self._recent: deque[Delivery] = deque(maxlen=RECENT)
        #: Every event this process delivered with an id above this is in ``_recent``
        #: (``None`` before the first one).
        self._recent_after: int | None = None
        #: The id of the last event delivered here (``None`` while unknown).
        self.last_delivered: int | None = None
        #: Held while an event's result is made (``schema.live.prepared``): at most
        #: ``READING`` at once.
        self.reading = asyncio.Semaphore(READING)

    @property
    def listening(self) -> bool:
        """Whether committed events reach this process now (always, in-process)."""
        return True

    def follow(self, channel: str, feed: Feed) -> None:
        """Listen on the notification ``channel`` for ``feed`` too, from ``start`` on (call
        it before). In-process there are no notifications: the feed never connects."""

    async def start(self) -> None:
        """Begin receiving events (a no-op where there is nothing to connect)."""

    async def stop(self) -> None:
        """End every subscription (they finish their queued events first)."""
        for subscriptions in list(self._subscriptions.values()):
            for subscription in list(subscriptions):
                subscription.end()

    async def stage(self, session: Any, events: Sequence[Event]) -> list[Event]:
        """Called inside the transaction, just before COMMIT, with its events: writes them to
        the outbox and returns them with their event ids. Raises what the database raises
        (the transaction then rolls back)."""
        return await outbox.write(session, events)

    def committed(self, events: Sequence[Event]) -> None:
        """Called once the transaction that made ``events`` has committed."""

    def subscribe(
        self,
        kind: EventKind,
        match: Match,
        maxsize: int,
        stall: float = 5.0,
        watcher: Watcher | None = None,
    ) -> Subscription:
        """A new subscription to events of ``kind`` for which ``match`` is true, queueing at
        most ``maxsize`` of them, ended on overflow once its client has left a result
        untaken for ``stall`` seconds; ``watcher`` is told what its queue takes in and drops."""
        subscription = Subscription(self, kind, match, maxsize, stall, watcher)
        self._subscriptions[kind].add(subscription)
        metrics.SUBSCRIPTIONS_ACTIVE.inc()
        return subscription

    def deliver(self, event: Event) -> None:
        """Offer ``event`` to every subscription of its kind (never waits)."""
        metrics.EVENTS_RECEIVED.labels(event.kind.value).inc()
        delivery = Delivery(event)
        if self._recent_after is None:
            self._recent_after = event.event_id - 1
        elif len(self._recent) == RECENT:
            self._recent_after = self._recent[0].event.event_id
        self._recent.append(delivery)
        self.last_delivered = event.event_id
        for subscription in list(self._subscriptions.get(event.kind, ())):
            subscription.offer(delivery)

    def recent(self, after: int, kind: EventKind) -> list[Delivery] | None:
        """The deliveries of ``kind`` this process fanned out with event ids above ``after``,
        oldest first, when it still holds all of them; ``None`` when some may be gone (the
        caller reads the outbox instead)."""
        if self._recent_after is None or after < self._recent_after:
            return None
        return [d for d in self._recent if d.event.event_id > after and d.event.kind is kind]

    @property
    def subscription_count(self) -> int:
        """Subscriptions open in this process."""
        return sum(len(s) for s in self._subscriptions.values())

    def _remove(self, subscription: Subscription) -> None:
        subscriptions = self._subscriptions.get(subscription.kind)
        if subscriptions is not None and subscription in subscriptions:
            subscriptions.discard(subscription)
            metrics.SUBSCRIPTIONS_ACTIVE.dec()


class InProcessBroker(Broker):
    """Delivers events in the process that committed them (one process: SQLite).

    ``committed`` is called in commit order: SQLite runs one writer at a time, and the
    writer's coroutine resumes from COMMIT before the next writer's COMMIT can finish.
    """

    def committed(self, events: Sequence[Event]) -> None:
        for event in events:
            self.deliver(event)
