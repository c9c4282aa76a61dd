"""The process's one Redis client (``REDIS_URL``) and what it says while Redis is away.

The stores that share state through Redis (persisted queries, ``schema.engine.persisted_store``;
cached responses, ``schema.engine.response_cache``; rate limits, ``schema.engine.rate_limits``)
use one client, so one connection pool, and one outage: Redis being unreachable never fails a
request (each store falls back to the process) and is logged as one warning line a minute,
whichever store noticed. After a failure, no user asks Redis again for ``RETRY_SECONDS``
(``available``), so a Redis that stopped answering costs each process at most one timeout
(``TIMEOUT``) a second, not one per request.
Source: redis-py docs, "Asyncio" (``redis.asyncio``, ``Redis.from_url``, ``aclose``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

T = TypeVar("T")

logger = logging.getLogger("inkwell.redis")

#: Seconds between two warnings that Redis is unreachable.
WARN_EVERY = 60.0
#: Seconds a Redis command may take before the process's own store answers instead.
TIMEOUT = 0.5
#: Seconds after a failed command before any user asks Redis again.
RETRY_SECONDS = 1.0


class Unanswered(Enum):
    """What ``RedisLink.ask`` returns when Redis was not asked, or did not answer."""

    UNANSWERED = "unanswered"


UNANSWERED = Unanswered.UNANSWERED


class RedisLink:
    """A redis-py asyncio client for ``url`` (replies as bytes; it connects on first use)
    and the outage's state: ``available`` (false for ``RETRY_SECONDS`` after a failure),
    and its rate-limited warning (``unreachable``)."""

    def __init__(self, url: str) -> None:
        self.client: Redis = Redis.from_url(
            url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        self._warned_at = -WARN_EVERY
        self._retry_at = 0.0

    @property
    def available(self) -> bool:
        """Whether Redis may be asked now: false for ``RETRY_SECONDS`` after a failure
        (``unreachable``), when every user answers from the process instead."""
        return time.monotonic() >= self._retry_at

    async def ask(
        self, command: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[Unanswered.UNANSWERED]:
        """``await command(client)``'s reply; ``UNANSWERED`` while Redis is not
        ``available``, or when the command fails or times out (``unreachable`` is told). The
        one place a user of Redis learns it is away: never raises for Redis's sake."""
        if not self.available:
            return UNANSWERED
        try:
            return await command(self.client)
        except (RedisError, OSError) as exc:
            self.unreachable(exc)
            return UNANSWERED

    def unreachable(self, exc: BaseException) -> None:
        """Redis failed a command with ``exc``: stop asking it for ``RETRY_SECONDS``
        (``available``), and warn, at most once every ``WARN_EVERY`` seconds."""
        now = time.monotonic()
        self._retry_at = now + RETRY_SECONDS
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "Redis unavailable, persisted queries, cached responses and rate limits kept "
                "per process for now: %s",
                exc,
            )

    async def close(self) -> None:
        """Close the client's connections (the lifespan's end)."""
        await self.client.aclose()
