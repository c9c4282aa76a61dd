"""The event broker on its own: fan-out, filters, bounded queues and their gaps, order."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from schema.live import Event, EventKind, InProcessBroker, SubscriptionOverflow
from schema.live import broker as broker_module
from schema.live.outbox import event_from_row
from schema.live.postgres import PostgresBroker, broker_for
from schema.live.subscription import GAP


def event(n: int, kind: EventKind = EventKind.POST_UPDATED, post: int = 1) -> Event:
    return Event(kind, n, post, author_id=7, published=True)


async def test_each_subscription_gets_the_events_of_its_kind_that_match_in_order() -> None:
    broker = InProcessBroker()
    everything = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=10)
    odd = broker.subscribe(EventKind.POST_UPDATED, lambda e: e.id % 2 == 1, maxsize=10)
    comments = broker.subscribe(EventKind.COMMENT_ADDED, lambda e: True, maxsize=10)
    broker.committed([event(n) for n in range(1, 6)])
    await broker.stop()
    assert [d.event.id async for d in everything] == [1, 2, 3, 4, 5]
    assert [d.event.id async for d in odd] == [1, 3, 5]
    assert [d.event.id async for d in comments] == []


async def test_a_full_queue_ends_a_subscription_whose_client_stopped_reading() -> None:
    broker = InProcessBroker()
    slow = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=3, stall=0.01)
    fast = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=3, stall=0.01)
    slow.given()  # its last result is still waiting to be sent...
    await asyncio.sleep(0.02)  # ...for longer than ``stall``
    for n in range(1, 5):
        broker.deliver(event(n))
        assert (await anext(fast)).event.id == n
    assert broker.subscription_count == 1
    with pytest.raises(SubscriptionOverflow) as overflow:
        await anext(slow)
    assert overflow.value.extensions["code"] == "SUBSCRIPTION_OVERFLOW"


async def test_a_full_queue_of_a_reading_subscriber_becomes_a_gap_and_it_goes_on() -> None:
    broker = InProcessBroker()
    behind = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=3, stall=60)
    behind.given()  # sending, but not for long: its client is reading
    for n in range(1, 6):
        broker.deliver(event(n))
    await broker.stop()
    # 1-3 filled the queue; 4 overflowed it: dropped, a gap, then 4 and 5 queued again.
    assert [g if g is GAP else g.event.id async for g in behind] == [GAP, 4, 5]
    assert broker.subscription_count == 0


async def test_a_waiting_subscriber_wakes_for_a_later_event_and_unsubscribes_on_close() -> None:
    broker = InProcessBroker()
    with broker.subscribe(EventKind.COMMENT_ADDED, lambda e: True, maxsize=5) as subscription:
        waiting = asyncio.ensure_future(anext(subscription))
        await asyncio.sleep(0)
        assert not waiting.done()
        broker.committed([event(9, EventKind.COMMENT_ADDED)])
        assert (await waiting).event.id == 9
        assert broker.subscription_count == 1
    assert broker.subscription_count == 0
    broker.committed([event(10, EventKind.COMMENT_ADDED)])  # nobody left: nothing happens


def test_an_outbox_row_becomes_its_event_with_its_id() -> None:
    row = (41, "comment_added", 12, 3, 4, False)
    assert event_from_row(row) == Event(
        EventKind.COMMENT_ADDED, 12, 3, author_id=4, published=False, event_id=41
    )


def test_the_database_chooses_the_broker() -> None:
    assert isinstance(broker_for("sqlite+aiosqlite:///x.db"), InProcessBroker)
    assert isinstance(broker_for("postgresql+asyncpg://u@h:5432/d"), PostgresBroker)


async def test_recent_deliveries_are_kept_for_subscribers_behind_until_pushed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broker_module, "RECENT", 3)
    broker = InProcessBroker()
    assert broker.recent(0, EventKind.POST_UPDATED) is None  # nothing delivered yet
    broker.committed([replace(event(n), event_id=10 + n) for n in range(1, 5)])  # ids 11-14
    # 11 was pushed out: only a subscriber that saw it may read the rest from memory.
    assert broker.recent(10, EventKind.POST_UPDATED) is None
    assert [d.event.event_id for d in broker.recent(11, EventKind.POST_UPDATED) or []] == [
        12,
        13,
        14,
    ]
    assert [d.event.event_id for d in broker.recent(13, EventKind.POST_UPDATED) or []] == [14]
    assert broker.recent(13, EventKind.COMMENT_ADDED) == []


async def test_a_postgres_process_delivers_its_own_commit_only_when_it_is_next_in_order() -> None:
    """A commit's events that directly follow the last delivered one are delivered at once
    (their notification then reads nothing); after a gap (another process's commit, or an
    id a failed COMMIT left unused) they wait for the outbox read, which keeps the order."""
    broker = PostgresBroker("postgresql+asyncpg://u@h:5432/d")
    followed = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=10)
    with_ids = [replace(event(n), event_id=n) for n in range(1, 8)]
    broker.committed(with_ids[0:1])  # not listening yet: where it stands is unknown
    assert broker.last_delivered is None
    broker.last_delivered = 1  # as the first LISTEN finds the outbox
    broker.committed(with_ids[1:3])  # ids 2, 3: next
    assert broker.last_delivered == 3
    broker.committed(with_ids[4:5])  # id 5: 4 is another process's, not read yet
    broker.committed([with_ids[3], with_ids[5]])  # ids 4, 6: not one run
    assert broker.last_delivered == 3
    await broker.stop()
    assert [d.event.event_id async for d in followed] == [2, 3]
