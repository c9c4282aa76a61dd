"""A mutation operation's transaction: whether it may still commit, and what runs after it does.

Every mutation field of an operation writes into one unit of work; the transaction extension
commits it once at the end, or rolls all of it back (``schema.extensions.transaction``).
Source: Hasura's mutation semantics ("multiple mutations in a request run sequentially in one
transaction"); SQLAlchemy docs, "Session Basics: Managing Transactions".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

logger = logging.getLogger("inkwell.transaction")


class Outcome(Enum):
    """How a mutation operation's transaction ended (``extensions.transaction``)."""

    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


@dataclass
class Transaction:
    """The state of one mutation operation's transaction.

    ``failed`` is set by the first field that returns a typed error or raises; from then on
    the operation can only roll back, and later mutation fields do not run. ``after_commit``
    callbacks (e.g. publishing events) run only once the commit has succeeded.
    """

    failed: bool = False
    outcome: Outcome | None = None
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def fail(self) -> None:
        """Doom the transaction: it will roll back, whatever later fields do."""
        self.failed = True

    def on_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` after a successful commit (never after a rollback)."""
        self.after_commit.append(callback)

    async def committed(self) -> None:
        """Record the commit and run the ``after_commit`` callbacks; a failing callback is
        logged and does not affect the others (the data is committed either way)."""
        self.outcome = Outcome.COMMITTED
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                logger.exception("an after-commit callback failed")

    def rolled_back(self) -> None:
        """Record the rollback; the ``after_commit`` callbacks are dropped unrun."""
        self.outcome = Outcome.ROLLED_BACK
        self.after_commit.clear()
