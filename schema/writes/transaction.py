"""A mutation operation's transaction: whether it may still commit, and which fields succeeded.

Every mutation field of an operation writes into one unit of work; the transaction extension
commits it once at the end, or rolls all of it back (``schema.writes.boundary``).
Source: Hasura's mutation semantics ("multiple mutations in a request run sequentially in one
transaction"); SQLAlchemy docs, "Session Basics: Managing Transactions".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from schema.live.events import Event


class Outcome(Enum):
    """How a mutation operation's transaction ended (``extensions.transaction``)."""

    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"


@dataclass
class Transaction:
    """The state of one mutation operation's transaction.

    ``failed`` is set by the first field that returns a typed error or raises (anywhere in
    its payload too); from then on the operation can only roll back, and later mutation
    fields do not run. ``succeeded`` holds the response keys of the fields that returned a
    success payload: if the operation rolls back after all, their payloads are withdrawn.
    ``events`` is the outbox: what the fields changed, for subscribers, released only once
    the transaction commits (and dropped if it rolls back). ``accounts`` are the users whose
    role or status it changed or who it deleted: the process's viewer cache forgets them when
    the commit ends, before the response goes (other processes hear of it from the trigger).
    """

    failed: bool = False
    outcome: Outcome | None = None
    succeeded: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    accounts: set[int] = field(default_factory=set)
    #: The primary's WAL position after the commit (``pg_lsn`` text), with read replicas.
    position: str | None = None

    def announce(self, *events: Event) -> None:
        """Queue ``events`` for subscribers, to be published if this transaction commits."""
        self.events.extend(events)

    def outbox(self) -> list[Event]:
        """The queued events in the order they were made, each once (PostgreSQL's NOTIFY
        folds identical payloads of one transaction too, so both brokers agree)."""
        return list(dict.fromkeys(self.events))

    def fail(self) -> None:
        """Doom the transaction: it will roll back, whatever later fields do."""
        self.failed = True
