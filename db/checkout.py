"""A query operation's connection: its Session's, checked out and returned in the event loop's
own thread when the pool needs no I/O for it.

``AsyncSession.connection()`` and ``AsyncSession.close()`` each run the Session's code in a new
greenlet (``greenlet_spawn``), in case it must wait on the network. On CPython 3.12 each new
greenlet also maps and unmaps a frame stack: two more ``mmap``/``munmap`` pairs per request
(``strace -c``) and twice the system time of a request served without them. For a read-only
operation on PostgreSQL (``Context.read``) neither call needs the network in the common
case, so they run here directly, on the same public ``Session`` the ``AsyncSession`` proxies
(``AsyncSession.sync_session``), with the same binds:

- ``Session.connection()`` does no I/O when the pool hands out an idle connection it has
  nothing to check (no pre-ping or recycling: ``direct``, for the pools ``db.engine`` makes)
  and that is not waiting to reconnect. Which records may be waiting is followed through the
  pool's public events: every record the pool has once a connection of it is invalidated
  (SQLAlchemy then invalidates the whole pool: each idle connection reconnects at its next
  checkout), and any record checked in without a connection (its reconnect failed, as when
  the database is down: no ``invalidate`` event says so), until a checkout of it succeeds
  (the ``checkout`` event). While any record may be waiting, every checkout takes the
  greenlet. Connecting outside a greenlet fails with ``MissingGreenlet``, but only after the
  dialect has made asyncpg's ``connect`` coroutine, which nothing then awaits: issue 19's
  "coroutine 'connect' was never awaited" during outages, from the countdown this replaced
  (the next ``size()`` checkouts after an ``invalidate`` event), which knew nothing of a
  failed reconnect and could run out before every stale record had been checked out.
- ``Session.reset()`` (``Session.close()``, leaving the session reusable) does no I/O when
  the connection is valid, the driver is in no transaction
  (``asyncpg.Connection.is_in_transaction()``: the reads on the driver never begin one, so
  there is nothing to roll back) and the pool has room for it (``QueuePool.checkedin() <
  size()``: no overflow connection to close).

- ``Session.connection()`` does no I/O when the session's transaction already holds its
  connection: a mutation's, once its first statement ran (the outbox's write just before
  COMMIT, ``schema.live.outbox``). ``SessionEvents.after_begin`` gives that connection as
  the transaction begins on it; it is kept in the session's ``info`` and used while it is
  open, of the session's bind, and the session in a transaction.

Anything else takes ``AsyncSession``'s own greenlet path. Measured side by side in
bench/RESULTS.md ("Issue 17, third session"). Pinned by ``tests/test_reader.py``
(a burst above the pool logs nothing; connections a restart dropped reconnect without a
stray coroutine; the session's bind decides where a query reads) and ``tests/test_clean_logs.py``
(an outage, connections ended while new ones are refused, leaves no stray coroutine).

Source: SQLAlchemy docs, "Asynchronous I/O (asyncio)" (``AsyncSession.sync_session``,
``run_sync``), "Connection Pooling" (``QueuePool``; "More on Invalidation": a disconnect
invalidates the whole pool), "Core Events" (``PoolEvents``: ``connect``, ``checkout``,
``checkin`` with ``dbapi_connection`` ``None`` for a record without one, ``invalidate``,
``soft_invalidate``; ``ConnectionPoolEntry``); asyncpg API reference
(``Connection.is_in_transaction``).
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, Pool, QueuePool

#: Per pool that checks nothing at checkout (``direct``): every connection record it has made.
_records: weakref.WeakKeyDictionary[Pool, weakref.WeakSet[ConnectionPoolEntry]] = (
    weakref.WeakKeyDictionary()
)
#: Per such pool: the records whose next checkout may need the network (to reconnect).
_waiting: weakref.WeakKeyDictionary[Pool, weakref.WeakSet[ConnectionPoolEntry]] = (
    weakref.WeakKeyDictionary()
)


def direct(engine: AsyncEngine) -> None:
    """Let ``engine``'s pool hand out and take back connections without a greenlet: the
    caller promises it neither pre-pings nor recycles connections (``db.engine`` knows its
    own settings). A pool that is not a ``QueuePool`` is left alone."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool in _records:
        return
    records: weakref.WeakSet[ConnectionPoolEntry] = weakref.WeakSet()
    waiting: weakref.WeakSet[ConnectionPoolEntry] = weakref.WeakSet()

    def connected(_: Any, record: ConnectionPoolEntry) -> None:
        records.add(record)

    def invalidated(_: Any, record: ConnectionPoolEntry, *__: Any) -> None:
        # The whole pool is invalidated with it: every idle record reconnects when next used.
        waiting.update(records)
        waiting.add(record)

    def checked_out(_: Any, record: ConnectionPoolEntry, *__: Any) -> None:
        if waiting:  # it holds a live connection now
            waiting.discard(record)

    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is None:  # invalidated, or its reconnect failed
            waiting.add(record)

    event.listen(pool, "connect", connected)
    event.listen(pool, "invalidate", invalidated)
    event.listen(pool, "soft_invalidate", invalidated)
    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)
    _records[pool], _waiting[pool] = records, waiting
    if not event.contains(Session, "after_begin", _began):
        event.listen(Session, "after_begin", _began)


#: Where a session keeps the connection its current transaction began on (``_began``).
_HELD = "inkwell.held_connection"


def _began(session: Session, _transaction: Any, connection: Connection) -> None:
    session.info[_HELD] = connection


async def connection(session: AsyncSession) -> Connection:
    """The connection ``session`` holds (``Session.connection()``: its binds decide which),
    checked out without a greenlet when that needs no I/O. Raises what
    ``AsyncSession.connection()`` raises (``sqlalchemy.exc.TimeoutError`` when the pool has
    none to give, a ``DBAPIError`` when connecting fails)."""
    sync = session.sync_session
    bind = sync.get_bind()
    held: Connection | None = sync.info.get(_HELD)
    if (
        held is not None
        and sync.in_transaction()
        and not held.closed
        and not held.invalidated
        and held.engine is bind
    ):
        return held  # the transaction's own: what ``Session.connection()`` would return
    pool: Any = bind.pool if isinstance(bind, Engine) else None
    waiting = _waiting.get(pool) if pool is not None else None
    if waiting is not None and not waiting and pool.checkedin() > 0:
        try:
            return sync.connection()
        except MissingGreenlet:  # not expected: the events above say when it would be
            pass
    held = (await session.connection()).sync_connection
    assert held is not None  # an AsyncConnection from a session is always started
    return held


def close_at_once(session: AsyncSession, held: Connection | None) -> bool:
    """Close ``session``, whose only connection is ``held`` (or ``None``), here and now if
    returning that connection needs no I/O; returns whether it did. It is closed with
    ``Session.reset()``, which is ``Session.close()`` that leaves it as good as new, so it may
    be used again (``db.read_sessions``). A session in no transaction (a mutation's, once
    it committed or rolled back) holds no connection, and closes at once too. When it
    returns ``False`` nothing has happened: close with ``AsyncSession.close()``. Being
    synchronous, it cannot be cancelled half-way, so callers need no shield. Raises what
    ``Session.reset()`` raises."""
    if held is None:
        if session.sync_session.in_transaction():
            return False
    elif not _returns_at_once(held):
        return False
    session.sync_session.reset()
    return True


def _returns_at_once(held: Connection) -> bool:
    pool: Any = held.engine.pool
    if pool not in _records or held.invalidated or pool.checkedin() >= pool.size():
        return False
    # Valid, so reading its driver connection does no I/O.
    driver: Any = held.connection.driver_connection
    return not driver.is_in_transaction()
