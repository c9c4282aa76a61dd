"""Database work that runs to completion: shielded from cancellation, its failures mapped.

graphql-core cancels sibling resolvers when a non-null field fails, and a client may go away
mid-request. Cancelling a driver call mid-statement makes SQLAlchemy invalidate the pooled
connection and can leave a flush half-done, so the operation's database work runs in a task
of its own that a cancellation does not reach (``shielded``); ``to_completion`` also turns the
failures that mean something to a client into its GraphQL errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

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
