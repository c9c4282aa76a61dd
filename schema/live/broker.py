"""Fan-out of committed events to the process's subscriptions, each with a bounded queue.

A ``Broker`` has two sides. Writers hand it the events of a transaction twice: ``stage``
inside the transaction, just before COMMIT (which writes them to the outbox,
``schema.live.outbox``, and returns them with their event ids), and ``committed`` after it; a
rolled-back transaction's events are never handed over, and its outbox rows never exist.
Subscribers ``subscribe`` to one kind of event and read their own queue. ``deliver`` puts an
event into the queue of every matching subscription without ever waiting, so a subscriber
that falls behind delays nobody (the queues: ``schema.live.subscription``).

``InProcessBroker`` delivers at ``committed``: the SQLite deployment is one process.
``schema.live.postgres.PostgresBroker`` signals the commit with ``pg_notify`` at ``stage``
and delivers what it then reads from the outbox (or, for its own commit when that is next
in commit order, at ``committed``), so every server process on the database sees every
commit, in commit order.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from schema.live import metrics, outbox
from schema.live.events import Event, EventKind
from schema.live.subscription import Delivery, Match, Subscription, Watcher

#: Deliveries each process keeps after fanning them out (``Broker.recent``).
RECENT = 4096

#: Event results a process makes at once (``Broker.reading``): each holds a session, and on
#: PostgreSQL a pooled connection, while it reads; the rest of the pool is the requests'.
READING = 8


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
        #: Called with each event of a kind no subscription follows (``observe``).
        self._observers: dict[EventKind, list[Callable[[Event], None]]] = defaultdict(list)

    @property
    def listening(self) -> bool:
        """Whether committed events reach this process now (always, in-process)."""
        return True

    def follow(self, channel: str, feed: Feed) -> None:
        """Listen on the notification ``channel`` for ``feed`` too, from ``start`` on (call
        it before). In-process there are no notifications: the feed never connects."""

    def observe(self, kind: EventKind, observer: Callable[[Event], None]) -> None:
        """Call ``observer`` with every event of ``kind`` delivered here, in event id order,
        from the process's own commits and (on PostgreSQL) every other process's. For kinds
        no subscription follows (``EventKind.ROWS_CHANGED``): such events are not queued or
        kept for subscribers. ``observer`` must not block or raise."""
        self._observers[kind].append(observer)

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
        observers = self._observers.get(event.kind)
        if observers is not None or event.kind is EventKind.ROWS_CHANGED:
            self.last_delivered = event.event_id
            for observer in observers or ():
                observer(event)
            return
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
