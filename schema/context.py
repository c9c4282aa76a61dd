"""The typed per-operation context: settings, the unit of work's session, DataLoaders."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.stats import SqlStats
from settings import Settings

if TYPE_CHECKING:
    from schema.loaders import Loaders

logger = logging.getLogger("inkwell.session")


class OperationEnded(RuntimeError):
    """Raised by ``Context.session()`` once the operation's unit of work has been closed: work
    still scheduled then (a DataLoader batch of an abandoned field) must not open a new one."""


@dataclass
class Context:
    """Everything a resolver may use for one GraphQL operation.

    The ``AsyncSession`` is the operation's unit of work: created on first use (a GraphiQL page
    or a rejected request never opens one), shared by every resolver, closed by
    ``schema.extensions.unit_of_work`` when the operation ends, on every path.

    An ``AsyncSession`` must never be used by two coroutines at once, and graphql-core runs
    sibling resolvers concurrently, so ``session()`` hands it out under a per-operation lock.
    Source: SQLAlchemy docs, "Using AsyncSession with Concurrent Tasks".
    """

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    request: Any = None
    response: Any = None
    sql: SqlStats = field(default_factory=SqlStats)
    loaders: Loaders = field(init=False)
    _session: AsyncSession | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        from schema.loaders import Loaders

        self.loaders = Loaders(self.settings)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Borrow the operation's session exclusively for the body of an ``async with``.

        Raises ``OperationEnded`` after ``close()``.
        """
        async with self._lock:
            if self._closed:
                raise OperationEnded("the operation has ended and its session is closed")
            if self._session is None:
                self._session = self.sessionmaker()
            yield self._session

    @property
    def has_session(self) -> bool:
        """True once a resolver has opened the session."""
        return self._session is not None

    async def close(self) -> None:
        """End the unit of work: wait for a statement in flight, then close the session (which
        rolls back what was not committed and returns the connection to the pool).

        Never raises: a failure to close is logged, and the pool discards that connection.
        Safe to call more than once.
        """
        async with self._lock:
            self._closed = True
            self.loaders.clear()
            session, self._session = self._session, None
            if session is None:
                return
            try:
                await session.close()
            except Exception:
                logger.exception("closing the operation's session failed")


Info = strawberry.Info[Context, None]
