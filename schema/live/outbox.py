"""The event outbox: events written with the transaction that makes them, read back in order.

Every event a mutation announces is a row of ``events`` (``db.models.OutboxEvent``) inserted
in the mutation's own transaction, just before COMMIT: it exists exactly when the change
does. Event ids grow in commit order, so the outbox is one log that each server process, and
each resuming subscriber, reads forward from the last id it saw (``read_after``); nothing
that committed can be skipped, whatever was lost on the way (a notification, a connection, a
subscriber's queue). Rows older than ``EVENT_RETENTION_SECONDS`` are pruned (``prune``).

Commit order on PostgreSQL: an identity column hands out ids in the order inserts run, not
the order transactions commit, so a reader could see id 11 committed before id 10 and never
look back. The insert therefore first takes a transaction-level advisory lock, held until
COMMIT ends: ids are handed out one transaction at a time, in commit order (PostgreSQL
already serialises the commits of transactions that NOTIFY, so the lock adds little), and a
transaction's changes are visible before the next one gets its id. On SQLite there is one
writer at a time. An id can still go unused (a COMMIT that fails): readers skip holes.
Source: Chris Richardson, "Pattern: Transactional outbox"; PostgreSQL docs, "Advisory Locks"
and ``async.c`` (``PreCommit_Notify`` serialises notifying commits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import checkout, driver
from db.models import OutboxEvent
from schema.live.events import Event, EventKind

logger = logging.getLogger("inkwell.live")

#: The advisory lock that orders the outbox's ids ('inkw' in ASCII).
LOCK_KEY = 0x696E6B77
#: Outbox rows read in one statement while catching up.
READ_BATCH = 500

_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.kind,
    OutboxEvent.row_id,
    OutboxEvent.post_id,
    OutboxEvent.author_id,
    OutboxEvent.published,
)

#: PostgreSQL: the lock, the rows and the NOTIFY in one statement (one round trip), in
#: asyncpg's form (``write_postgres`` runs it on the driver). The lock's CTE is joined into
#: the insert's rows, so it is taken before the first id is; the NOTIFY carries only the
#: highest id: it signals, the outbox is what is read.
WRITE_POSTGRES_SQL = """
WITH ordered AS (SELECT pg_advisory_xact_lock($1) AS locked),
written AS (
    INSERT INTO events (kind, row_id, post_id, author_id, published, created_at)
    SELECT e.kind, e.row_id, e.post_id, e.author_id, e.published, clock_timestamp()
    FROM ordered, unnest(
        $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[]
    ) WITH ORDINALITY AS e(kind, row_id, post_id, author_id, published, n)
    ORDER BY e.n
    RETURNING id
)
SELECT array_agg(id ORDER BY id), pg_notify($7, max(id)::text) FROM written
"""

#: The driver-level read of ``read_after`` on an asyncpg connection (the LISTEN connection).
READ_AFTER_SQL = (
    "SELECT id, kind, row_id, post_id, author_id, published FROM events "
    "WHERE id > $1 ORDER BY id LIMIT $2"
)
#: The highest event id written so far (0 for an empty outbox), on an asyncpg connection.
LATEST_SQL = "SELECT coalesce(max(id), 0) FROM events"


def _with_ids(events: Sequence[Event], ids: Sequence[int]) -> list[Event]:
    return [replace(event, event_id=event_id) for event, event_id in zip(events, ids, strict=True)]


async def write_postgres(
    session: AsyncSession, channel: str, events: Sequence[Event]
) -> list[Event]:
    """Insert ``events`` into the outbox in commit order and NOTIFY ``channel`` with the
    highest id, in the session's transaction (call it just before COMMIT, once the
    transaction has written the events' rows). Returns the events with their ``event_id``.

    It runs on the driver connection the session holds (``db.driver.run``): one statement
    whose rows are no ORM object, for which SQLAlchemy's execution path cost more than the
    round trip. Raises ``RuntimeError`` when the session's connection is in no transaction
    (the rows would commit on their own, before the change they announce), and what the
    database raises (``DBAPIError``; the transaction then rolls back)."""
    held = await checkout.connection(session)
    connection: Any = held.connection.driver_connection  # valid and checked out: no I/O
    if not connection.is_in_transaction():
        raise RuntimeError("the outbox is written in the transaction that made its events")
    parameters = (
        LOCK_KEY,
        [e.kind.value for e in events],
        [e.id for e in events],
        [e.post_id for e in events],
        [e.author_id for e in events],
        [e.published for e in events],
        channel,
    )
    [(ids, _)] = await driver.run(held, WRITE_POSTGRES_SQL, parameters)
    return _with_ids(events, ids)


async def write(session: AsyncSession, events: Sequence[Event]) -> list[Event]:
    """Insert ``events`` into the outbox in the session's transaction (any database; SQLite
    runs one writer at a time, so its ids are in commit order). Returns the events with their
    ``event_id``."""
    rows = [
        {
            "kind": e.kind.value,
            "row_id": e.id,
            "post_id": e.post_id,
            "author_id": e.author_id,
            "published": e.published,
        }
        for e in events
    ]
    # One multi-row INSERT (SQLAlchemy's "insertmanyvalues"): its rows go in in order, so
    # their increasing ids, sorted, are the events' in order. (Asking SQLAlchemy to match
    # them by parameter order instead makes it run one INSERT per row on SQLite.)
    statement = insert(OutboxEvent).returning(OutboxEvent.id)
    result = await session.execute(statement, rows)
    return _with_ids(events, sorted(result.scalars().all()))


def event_from_row(row: Sequence[Any]) -> Event:
    """The ``Event`` of an outbox row ``(id, kind, row_id, post_id, author_id, published)``."""
    event_id, kind, row_id, post_id, author_id, published = row
    return Event(EventKind(kind), row_id, post_id, author_id, bool(published), event_id)


async def read_after(
    session: AsyncSession, after: int, kind: EventKind, limit: int = READ_BATCH
) -> list[Event]:
    """The outbox's events of ``kind`` with ids above ``after``, oldest first, at most
    ``limit`` of them."""
    statement = (
        select(*_COLUMNS)
        .where(OutboxEvent.id > after, OutboxEvent.kind == kind.value)
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    return [event_from_row(row) for row in await session.execute(statement)]


async def kept(session: AsyncSession, event_id: int) -> bool | None:
    """Whether the outbox still holds event ``event_id``: ``True``; ``False`` when it was
    pruned; ``None`` when no event has that id yet (or ever will, as far as anyone can tell:
    an id above every written one)."""
    found = await session.scalar(select(OutboxEvent.id).where(OutboxEvent.id == event_id))
    if found is not None:
        return True
    latest = await session.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0)))
    return False if event_id <= (latest or 0) else None


async def prune(session: AsyncSession, retention: float) -> int:
    """Delete the events written more than ``retention`` seconds ago, as a prefix of ids (all
    ids up to the newest such event), so what is kept is always a complete tail of the log.
    The newest event is always kept: it tells how far ids have gone (``kept``). Commits.
    Returns the rows deleted."""
    cutoff = datetime.now(UTC) - timedelta(seconds=retention)
    newest_old = (
        select(func.max(OutboxEvent.id)).where(OutboxEvent.created_at < cutoff).scalar_subquery()
    )
    newest = select(func.max(OutboxEvent.id)).scalar_subquery()
    result = await session.execute(
        delete(OutboxEvent).where(OutboxEvent.id <= newest_old, OutboxEvent.id < newest)
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_every(
    sessionmaker: async_sessionmaker[AsyncSession], retention: float, interval: float | None = None
) -> None:
    """Run ``prune`` every ``interval`` seconds (default: a tenth of ``retention``, at most a
    minute) until cancelled; a failure (the database away) is logged and tried again next
    time. Every server process runs one: the deletes are idempotent."""
    interval = interval if interval is not None else min(60.0, retention / 10)
    while True:
        await asyncio.sleep(interval)
        try:
            async with sessionmaker() as session:
                await prune(session, retention)
        except Exception as exc:
            logger.warning("pruning the event outbox failed (retry in %.0f s): %r", interval, exc)
