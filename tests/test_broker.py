"""The event broker on its own: fan-out, filters, bounded queues, order, and the wire format."""

from __future__ import annotations

import asyncio

import pytest

from schema.live import Event, EventKind, InProcessBroker, SubscriptionOverflow
from schema.live.postgres import PostgresBroker, broker_for


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


async def test_a_full_queue_ends_that_subscription_only() -> None:
    broker = InProcessBroker()
    slow = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=3)
    fast = broker.subscribe(EventKind.POST_UPDATED, lambda e: True, maxsize=3)
    for n in range(1, 5):
        broker.deliver(event(n))
        assert (await anext(fast)).event.id == n
    assert broker.subscription_count == 1
    with pytest.raises(SubscriptionOverflow) as overflow:
        await anext(slow)
    assert overflow.value.extensions["code"] == "SUBSCRIPTION_OVERFLOW"


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


def test_events_survive_the_wire_format_and_bad_payloads_are_refused() -> None:
    original = Event(EventKind.COMMENT_ADDED, 12, 3, author_id=4, published=False)
    assert Event.decode(original.encode()) == original
    for bad in ("", "[]", '{"kind": "nope", "id": 1}', '{"kind": "post_updated"}'):
        with pytest.raises((ValueError, KeyError, TypeError)):
            Event.decode(bad)


def test_the_database_chooses_the_broker() -> None:
    assert isinstance(broker_for("sqlite+aiosqlite:///x.db"), InProcessBroker)
    assert isinstance(broker_for("postgresql+asyncpg://u@h:5432/d"), PostgresBroker)
