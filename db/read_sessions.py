"""Query operations' sessions, each one a finished operation reset used again by the next.

Making an ``AsyncSession`` (and the ``Session`` it proxies: its identity map, its transaction
bookkeeping, its event dispatcher's listener collections, filled in on first use) cost a
query on PostgreSQL about 3 % of its instructions (bench/RESULTS.md, "Issue 17, fourth
session"). ``Session.reset()`` puts a session back in the state of a new one: no objects, no
transaction, no connection ("resetting the session to its initial state ... ready to be used
again"), so a query operation whose session was reset at its end (``db.checkout``'s
``close_at_once``) hands it to the next query operation instead of dropping it. Each
operation still has a session of its own, a fresh identity map and its own connection: only
the Python object is used again, never by two operations at once, since an operation gives
its session back only after it has ended.

Source: SQLAlchemy docs, ``Session.reset()`` and "Closing" (``Session.close()`` /
``close_resets_only``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class ReadSessions:
    """A factory of the sessions of query operations: ``maker``'s (whose binds decide where
    they read), or one an ended operation gave back.

    ``keep`` (at least 0) bounds the sessions kept for later; the pool's size is enough, as
    no more operations than that read at once for long.
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession], keep: int) -> None:
        self.maker = maker
        self._keep = keep
        self._idle: list[AsyncSession] = []

    def __call__(self) -> AsyncSession:
        """A session with nothing in it: one given back, or a new one from ``maker``."""
        return self._idle.pop() if self._idle else self.maker()

    def give_back(self, session: AsyncSession) -> None:
        """Keep ``session`` for a later operation. The caller has reset it
        (``Session.reset()``: no objects, no transaction, no connection) and will not use it
        again. Raises ``ValueError`` for a session still in a transaction."""
        if session.in_transaction():
            raise ValueError("only a reset session can be used again")
        if len(self._idle) < self._keep:
            self._idle.append(session)

    @property
    def kept(self) -> int:
        """How many sessions are waiting to be used again."""
        return len(self._idle)
