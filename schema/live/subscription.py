"""One subscriber's side of the broker: its bounded queue of deliveries.

The broker (``schema.live.broker``) offers each event to every subscription of its kind
without waiting. A ``Subscription`` keeps those its filter matches, in a queue of bounded
length. A queue that overflows is not the end of a subscription whose client is reading: its
events are all in the outbox, so it is told it has a gap (``GAP``) and reads what it missed
from there. Only a subscription whose client has not taken its last result for ``stall``
seconds (``SUBSCRIPTION_STALL_SECONDS``) when its queue overflows is ended, with
``SubscriptionOverflow``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from schema.errors import InkwellError
from schema.live import metrics
from schema.live.events import Event, EventKind

if TYPE_CHECKING:
    from schema.live.broker import Broker

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
