"""The typed per-operation context: settings, the unit of work's session, DataLoaders."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from sqlalchemy import Select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import checkout
from db import reader as driver
from db.errors import is_statement_timeout
from db.read_sessions import ReadSessions
from db.replicas import Replicas
from db.stats import SqlStats
from schema.completion import close_or_drop, to_completion
from schema.read_routing import query_sessions
from settings import Settings

if TYPE_CHECKING:
    from graphql import ExecutionResult

    from schema.auth.viewer import Viewer
    from schema.auth.viewer_cache import ViewerCache
    from schema.engine.response_cache import ResponseCache
    from schema.engine.response_entries import Lookup
    from schema.live import Broker
    from schema.live.prepared import EventExecutors
    from schema.reads.loaders import Loaders
    from schema.writes.transaction import Transaction

T = TypeVar("T")

logger = logging.getLogger("inkwell.session")


class OperationEnded(RuntimeError):
    """Raised by ``Context.session()`` once the operation's unit of work has been closed: work
    still scheduled then (a DataLoader batch of an abandoned field) must not open a new one."""


@dataclass
class Context:
    """Everything a resolver may use for one GraphQL operation.

    The ``AsyncSession`` is the operation's unit of work: created on first use (a GraphiQL page
    or a rejected request never opens one), shared by every resolver, closed by
    ``schema.writes.unit_of_work`` when the operation ends, on every path.

    An ``AsyncSession`` must never be used by two coroutines at once, and graphql-core runs
    sibling resolvers concurrently, so ``session()`` hands it out under a per-operation lock.
    Source: SQLAlchemy docs, "Using AsyncSession with Concurrent Tasks".

    Over a WebSocket, Strawberry makes one context per connection; ``schema.transport.ws``
    gives each operation its own (``operation_context`` there), and a subscription ends its
    unit of work once subscribed, reading each event in one of its own (on the primary).
    """

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    #: Sessions for a read-only operation (``read_only``), used again once reset
    #: (``db.read_sessions``). On PostgreSQL their reads begin no transaction.
    read_sessions: ReadSessions | None = None
    #: Set by ``UnitOfWork`` for a query operation, before anything opens the session.
    read_only: bool = False
    #: Where a query's session comes from (``DATABASE_REPLICA_URLS``; ``None``: the primary).
    replicas: Replicas | None = None
    #: The WAL position the request carries (``Inkwell-Read-After``): read where it is replayed.
    read_after: int | None = None
    #: The viewer's id as the token names it, set before the viewer is read.
    subject: int | None = None
    #: ``time.monotonic()`` before which every commit is visible to this operation's reads.
    read_as_of: float = math.inf
    request: Any = None
    response: Any = None
    #: Where committed events go and subscriptions come from (``app.state.broker``).
    broker: Broker | None = None
    #: The process's remembered viewers (``app.state.viewers``), consulted by sign-in.
    viewers: ViewerCache | None = None
    #: The process's response cache (``app.state.response_cache``; ``None`` when off), told
    #: of each commit by ``schema.writes.boundary``.
    response_cache: ResponseCache | None = None
    #: This request's look-up in it (``schema.transport.cached_responses``), marked once the
    #: operation is known to be cacheable (``schema.engine.extensions.cacheable``).
    cache_lookup: Lookup | None = None
    #: The credentials the operation came with: the ``Authorization`` header, or over a
    #: WebSocket the ``authorization`` of the ``connection_init`` payload.
    authorization: str | None = None
    #: A WebSocket's ``connection_init`` payload (set by Strawberry on the connection's context).
    connection_params: dict[str, Any] | None = None
    sql: SqlStats = field(default_factory=SqlStats)
    #: The signed-in user, set by ``schema.engine.extensions.authentication`` before execution.
    viewer: Viewer | None = None
    #: A mutation's viewer taken from the viewer cache, whose row its transaction has not read
    #: yet (``schema.writes.viewer_check``: its first statement, or the last before COMMIT).
    viewer_pending: bool = False
    #: The viewer's ``users`` row as a mutation's transaction read it (``viewer_check``).
    viewer_row: Any = None
    #: The operation's estimated rows (``schema.engine.limits``), set by ``QueryLimits``
    #: once validated; what its rate limit charges (``schema.engine.rate_limits``).
    cost: int = 0
    #: The mutation's transaction state (``schema.writes.boundary``); ``None`` for queries.
    transaction: Transaction | None = None
    #: An event's unit of work shared by subscribers (``schema.live.prepared.SharedRead``).
    shared: bool = False
    #: Builds the executor of each event of a subscription (``InkwellExecutor.build``).
    event_executors: EventExecutors | None = None
    #: A subscription's current event id (``extensions.eventId`` of its result).
    event_id: int | None = None
    #: A subscription's result for its current event, made ahead: what graphql-core's
    #: execution of it returns (``InkwellExecutor.execute_operation``).
    prepared: ExecutionResult | None = None
    _loaders: Loaders = field(init=False, repr=False)
    _session: AsyncSession | None = field(default=None, init=False, repr=False)
    #: Where ``_session`` came from (it may go back there once reset), if a ``ReadSessions``.
    _sessions: ReadSessions | None = field(default=None, init=False, repr=False)
    #: A read-only operation's session's connection, for reads on the driver (``read``).
    _connection: Connection | None = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        from schema.reads.loaders import Loaders

        self._loaders = Loaders(self.settings)

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders of the current unit of work."""
        return self._loaders

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Borrow the operation's session exclusively for the body of an ``async with``.
        Raises ``OperationEnded`` after ``close()``."""
        async with self._lock:
            if self._closed:
                raise OperationEnded("the operation has ended and its session is closed")
            yield self._open_session()

    def _open_session(self) -> AsyncSession:
        """The operation's session, made now if no resolver has opened it yet (a read-only
        operation's from ``read_sessions``). The caller holds the lock."""
        if self._session is None:
            if self.read_only and self.read_sessions is not None:
                sessions = self.read_sessions
                if self.replicas is not None:  # a replica's engine, or the primary's
                    sessions, self.read_as_of = query_sessions(self, self.replicas)
                self._session, self._sessions = sessions(), sessions
            else:
                self._session, self._sessions = self.sessionmaker(), None
        return self._session

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work(session)`` holding the session, to completion even if cancelled.

        graphql-core cancels sibling resolvers when a non-null field fails, and a client may
        go away mid-request. Cancelling a driver call mid-statement makes SQLAlchemy
        invalidate the pooled connection and can leave a flush half-done, so the work runs in
        a task of its own that the cancellation does not reach; the caller waits for it
        (still holding the session) and then lets the cancellation through. Raises whatever
        ``work`` raises, ``ServiceUnavailable`` when that is a database that cannot be
        reached (``db.errors.is_unavailable``), ``RequestTimeout`` for a statement stopped by
        ``statement_timeout``, and ``OperationEnded`` after ``close()``.
        """
        async with self.session() as session:
            return await self._to_completion(work(session))

    async def read(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``statement`` on the driver (``db.reader``) for a read-only operation
        (``reads_on_driver``), on the connection the operation's session holds
        (``Session.connection()`` through ``db.checkout``, so the session's binds decide where
        it runs): the ORM's SQL, rows without ORM instances. Exclusive and run to completion
        like ``run``, with the same errors.

        A read on a connection the server dropped (a restart) invalidates it, closes the
        session and runs again in a new one, on a new connection, up to as many times as
        the pool has connections: each idle one may have been dropped too. Any other failure
        of a read on a replica (but a timeout) runs it again on the primary, as the rest of
        the operation, and a replica that cannot be reached is skipped until it is well.
        """
        async with self._lock:
            if self._closed:
                raise OperationEnded("the operation has ended and its session is closed")
            return await self._to_completion(self._read(statement, params))

    async def _read(
        self, statement: Select[Any], params: dict[str, Any] | None
    ) -> list[tuple[Any, ...]]:
        attempts = self.settings.db_pool_size + self.settings.db_max_overflow + 1
        for attempt in range(attempts):
            try:
                if self._connection is None:
                    self._connection = await checkout.connection(self._open_session())
                return await driver.fetch(self._connection, statement, params)
            except Exception as exc:
                invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
                elsewhere = invalidated or is_statement_timeout(exc) or attempt == attempts - 1
                if self._sessions not in (None, self.read_sessions) and not elsewhere:
                    await self._leave_replica(exc)  # on a replica: the primary instead
                    continue
                if not invalidated or attempt == attempts - 1:
                    raise
                session, self._session, self._connection = self._session, None, None
                if session is not None:
                    await session.close()  # the connection is invalidated: nothing to return
        raise AssertionError("unreachable")  # pragma: no cover

    async def _leave_replica(self, error: Exception) -> None:
        assert self.replicas is not None and self._sessions is not None
        self.replicas.failed(self._sessions, error)
        session, self._session, self._connection = self._session, None, None
        self.replicas, self.read_as_of = None, math.inf  # the rest of it on the primary
        await close_or_drop(session)  # type: ignore[arg-type]

    async def _to_completion(self, work: Awaitable[T]) -> T:
        return await to_completion(work, self.settings.db_statement_timeout_seconds)

    async def commit(self) -> None:
        """Commit the unit of work: flush what is pending, then COMMIT (nothing to do if no
        resolver opened the session). Raises what the flush or the database raises."""
        if self._session is not None:
            await self.run(lambda session: session.commit())

    async def rollback(self) -> None:
        """Roll back everything the operation has done so far; the session stays usable (a
        new transaction begins on its next use). Every loaded object is expired by the
        rollback, so the DataLoader caches holding them are dropped too."""
        self.loaders.clear()
        self.viewer_row = None
        if self._session is not None:
            await self.run(lambda session: session.rollback())

    @property
    def reads_on_driver(self) -> bool:
        """True when this operation's reads run on the driver (``read``, ``db.reader``): a
        read-only operation on PostgreSQL. Nothing it reads is ever written back, so it needs
        no ORM instances."""
        return self.read_only and self.read_sessions is not None and not self.settings.is_sqlite

    @property
    def has_session(self) -> bool:
        """True once a resolver has opened the session."""
        return self._session is not None

    async def end_unit_of_work(self) -> None:
        """Close this unit of work's session and drop its DataLoaders, keeping the context
        usable: the next ``session()`` opens a new unit of work. A subscription calls it once
        it has checked what it was asked for (each event is read in a unit of work of its
        own: ``schema.live.prepared``). Never raises."""
        await self._end(final=False)

    async def close(self) -> None:
        """End the unit of work: wait for a statement in flight, then close the session (which
        rolls back what was not committed and returns the connection to the pool).

        Never raises: a failure to close is logged, and the pool discards that connection.
        Safe to call more than once.
        """
        await self._end(final=True)

    async def _end(self, *, final: bool) -> None:
        async with self._lock:
            self._closed = self._closed or final
            self._loaders.clear()
            session, self._session = self._session, None
            held, self._connection = self._connection, None
            sessions, self._sessions = self._sessions, None
            if session is None:
                return
            try:
                at_once = checkout.close_at_once(session, held)
            except Exception:
                logger.exception("closing the operation's session failed")
                at_once = False
            if not at_once:
                # Shielded: a cancellation (a client leaving) must not leave the session
                # half-closed, its connection checked out; dropped if it cannot be closed.
                await close_or_drop(session)
            elif sessions is not None:
                # Reset, and nothing here can reach it any more: the next query's.
                sessions.give_back(session)


Info = strawberry.Info[Context, None]
