"""Database work that runs to completion: shielded from cancellation, its failures mapped.

graphql-core cancels sibling resolvers when a non-null field fails, and a client may go away
mid-request. Cancelling a driver call mid-statement makes SQLAlchemy invalidate the pooled
connection and can leave a flush half-done, so the operation's database work runs in a task
of its own that a cancellation does not reach (``shielded``); ``to_completion`` also turns the
failures that mean something to a client into its GraphQL errors; ``close_or_drop`` ends a
session whatever state its connection is in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from db.errors import is_statement_timeout, is_unavailable
from schema.errors import RequestTimeout, ServiceUnavailable

logger = logging.getLogger("inkwell.session")


async def to_completion[R](work: Awaitable[R], statement_timeout_seconds: float) -> R:
    """Await ``work`` to completion even if the caller is cancelled (``shielded``). Raises what
    ``work`` raises, ``ServiceUnavailable`` when that is a database that cannot be reached
    (``db.errors.is_unavailable``; logged) and ``RequestTimeout`` (naming
    ``statement_timeout_seconds``) for a statement stopped by ``statement_timeout``."""
    try:
        return await shielded(work)
    except Exception as exc:
        if is_unavailable(exc):
            logger.warning("database unavailable: %r", exc)
            raise ServiceUnavailable() from exc
        if is_statement_timeout(exc):
            raise RequestTimeout(statement_timeout_seconds) from exc
        raise


async def shielded[R](work: Awaitable[R]) -> R:
    """Await ``work`` in a task of its own that a cancellation of the caller does not reach:
    the cancelled caller waits for it to finish, then the cancellation goes on. Raises what
    ``work`` raises, or ``CancelledError``.

    The task starts eagerly: it runs at once, up to its first wait for I/O (or to its end),
    instead of an event-loop iteration later. Source: Python docs, ``asyncio.Task``
    (``eager_start``, 3.12).
    """
    if asyncio.iscoroutine(work):
        task = asyncio.Task(work, loop=asyncio.get_running_loop(), eager_start=True)
        if task.done():
            return task.result()
    else:
        task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancelled caller has no use for it
        raise


async def close_or_drop(session: AsyncSession) -> None:
    """Close ``session`` (roll back, return its connection to the pool) in one greenlet
    (``AsyncSession.run_sync``), shielded like ``to_completion``. When that fails its
    connection is invalidated instead (``Connection.invalidate()``: the pool discards it and
    makes a new one when needed), so a connection is never left checked out (for the garbage
    collector to find, with an error line) nor returned half reset. The connection is taken
    before closing (``Session.connection()``, the transaction's own: no checkout when it has
    one), as ``Session.close()`` lets go of its transaction before it rolls back, and once
    that has failed nothing could reach the connection any more. Never raises.

    During an outage the ROLLBACK fails on a connection the server ended, or asyncpg refuses
    it while the broken connection's last operation is still in progress ("cannot switch to
    state 15"). That is a database error, logged as one warning line without a traceback,
    its text the same each time (the error's type, not its message), so that each process's
    log writes it once per ``LOG_REPEAT_SECONDS`` (``schema.telemetry.repeats``): issue 19
    had a traceback per operation. Any other failure is logged with its traceback.
    Source: SQLAlchemy docs, ``Session.close()``, ``Connection.invalidate()``,
    ``AsyncSession.run_sync()``.
    """
    try:
        failure = await shielded(session.run_sync(_close_or_invalidate))
    except Exception as exc:  # the invalidation failed too: the pool replaces what it can't use
        failure = exc
    if failure is None:
        return
    if isinstance(failure, DBAPIError) or is_unavailable(failure):
        logger.warning(
            "closing the operation's session failed (%s); its connection was dropped",
            type(failure).__name__,
        )
    else:
        logger.error("closing the operation's session failed", exc_info=failure)


def _close_or_invalidate(session: Session) -> Exception | None:
    """Close ``session``, or invalidate and return its connection when that fails; returns
    the failure."""
    try:
        held = session.connection() if session.in_transaction() else None
    except Exception:  # a transaction a failed flush or commit ended: close rolls it back
        held = None
    try:
        session.close()
    except Exception as exc:
        if held is not None and not held.closed:
            held.invalidate(exc)
            held.close()
        return exc
    return None
