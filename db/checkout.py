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
  and that is not waiting to reconnect. After any connection of the pool is invalidated (a
  restart), the next ``QueuePool.size()`` checkouts take the greenlet, since an idle one may
  need reconnecting; should one need it all the same, SQLAlchemy raises ``MissingGreenlet``
  before any I/O, with the connection record put back, and the checkout takes the greenlet.
- ``Session.reset()`` (``Session.close()``, leaving the session reusable) does no I/O when
  the connection is valid, the driver is in no transaction
  (``asyncpg.Connection.is_in_transaction()``: the reads on the driver never begin one, so
  there is nothing to roll back) and the pool has room for it (``QueuePool.checkedin() <
  size()``: no overflow connection to close).

Anything else takes ``AsyncSession``'s own greenlet path. Measured side by side in
bench/RESULTS.md ("Issue 17, third session"). Pinned by ``tests/test_reader.py``
(a burst above the pool logs nothing; connections a restart dropped reconnect without a
stray coroutine; the session's bind decides where a query reads).

Source: SQLAlchemy docs, "Asynchronous I/O (asyncio)" (``AsyncSession.sync_session``,
``run_sync``), "Connection Pooling" (``QueuePool``, pool events ``invalidate`` and
``soft_invalidate``); asyncpg API reference (``Connection.is_in_transaction``).
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import Pool, QueuePool

#: Per pool that checks nothing at checkout (``direct``): how many more checkouts take the
#: greenlet, because an idle connection may need reconnecting.
_suspect: weakref.WeakKeyDictionary[Pool, int] = weakref.WeakKeyDictionary()


def direct(engine: AsyncEngine) -> None:
    """Let ``engine``'s pool hand out and take back connections without a greenlet: the
    caller promises it neither pre-pings nor recycles connections (``db.engine`` knows its
    own settings). A pool that is not a ``QueuePool`` is left alone."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool in _suspect:
        return

    def invalidated(*_: Any) -> None:
        _suspect[pool] = pool.size()

    event.listen(pool, "invalidate", invalidated)
    event.listen(pool, "soft_invalidate", invalidated)
    _suspect[pool] = 0


async def connection(session: AsyncSession) -> Connection:
    """The connection ``session`` holds (``Session.connection()``: its binds decide which),
    checked out without a greenlet when that needs no I/O. Raises what
    ``AsyncSession.connection()`` raises (``sqlalchemy.exc.TimeoutError`` when the pool has
    none to give, a ``DBAPIError`` when connecting fails)."""
    sync = session.sync_session
    bind = sync.get_bind()
    pool: Any = bind.pool if isinstance(bind, Engine) else None
    suspect = _suspect.get(pool) if pool is not None else None
    if suspect == 0 and pool.checkedin() > 0:
        try:
            return sync.connection()
        except MissingGreenlet:
            _suspect[pool] = pool.size()
    elif suspect:
        _suspect[pool] = suspect - 1
    held = (await session.connection()).sync_connection
    assert held is not None  # an AsyncConnection from a session is always started
    return held


def close_at_once(session: AsyncSession, held: Connection | None) -> bool:
    """Close ``session``, whose only connection is ``held`` (or ``None``), here and now if
    returning that connection needs no I/O; returns whether it did. It is closed with
    ``Session.reset()``, which is ``Session.close()`` that leaves it as good as new, so it may
    be used again (``db.read_sessions``). When it returns ``False`` nothing has happened:
    close with ``AsyncSession.close()``. Being synchronous, it cannot be cancelled half-way,
    so callers need no shield. Raises what ``Session.reset()`` raises."""
    if held is None or not _returns_at_once(held):
        return False
    session.sync_session.reset()
    return True


def _returns_at_once(held: Connection) -> bool:
    pool: Any = held.engine.pool
    if pool not in _suspect or held.invalidated or pool.checkedin() >= pool.size():
        return False
    # Valid, so reading its driver connection does no I/O.
    driver: Any = held.connection.driver_connection
    return not driver.is_in_transaction()
