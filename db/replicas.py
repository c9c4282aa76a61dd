"""Read replicas: which engine a query operation's session is bound to, and how far each
replica has replayed the primary's write-ahead log.

Each replica of ``DATABASE_REPLICA_URLS`` has an engine made by ``db.engine.create_engine``
(the same pool and timeouts) and a ``ReadSessions`` whose sessionmaker is bound to it: a query
operation's session comes from the one ``Replicas.choose`` picks, so every statement of the
operation, ORM or on the driver (``Session.connection()``), runs where the session's bind
says, and nothing else routes (SQLAlchemy docs, "Session.get_bind", "Custom Vertical
Partitioning"). Mutations, subscription events, the outbox and its pruner, the broker's LISTEN
connection and anything else keep the primary's sessions.

How far a replica has replayed is read by ``db.replica_monitor`` every
``REPLICA_CHECK_SECONDS``: its ``pg_last_wal_replay_lsn()`` against the primary's
``pg_current_wal_lsn()``. Replay only moves forward, so the last reading is a lower bound, and
a replica that had replayed a position then has replayed it now. A replica that is down, or
further behind than ``MAX_REPLICA_LAG_SECONDS``, is skipped until a later check finds it well.

Read your writes: a mutation returns the primary's WAL position read right after its COMMIT
(``commit_position``); a request carrying it back is served by a replica known to have
replayed that far, else by the primary; and in the process that committed, the same viewer is
pinned to such a replica or the primary until every replica has replayed it (``pin``). A
transaction's changes are visible on a hot standby once its commit record is replayed.
Positions are ``pg_lsn`` values, compared as numbers (``parse_lsn``). This assumes commits
are durable before they return (``synchronous_commit`` not ``off``, PostgreSQL's default):
then ``pg_current_wal_lsn()``, the WAL written, is past every commit that has returned.
Source: PostgreSQL docs, "Hot Standby", "System Administration Functions" (backup and
recovery control), "pg_lsn Type".
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db import checkout, reader
from db.engine import create_engine, create_sessionmaker
from db.errors import is_unavailable
from db.read_sessions import ReadSessions
from settings import Settings

logger = logging.getLogger("inkwell.replicas")

#: The response header (and request header) carrying a commit's WAL position.
READ_AFTER_HEADER = "Inkwell-Read-After"
#: Viewers pinned per process at most; the oldest pin goes first.
MAX_PINS = 10_000
#: A ``pg_lsn`` as text: two hexadecimal numbers of up to 32 bits.
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
#: The primary's WAL position now: past every commit that has returned.
POSITION = select(func.pg_current_wal_lsn())


def parse_lsn(text: str) -> int:
    """A WAL position written as PostgreSQL writes a ``pg_lsn`` (``"16/B374D848"``: two
    hexadecimal numbers, the high and low 32 bits) as one number. Raises ``ValueError`` for
    anything else."""
    found = _LSN.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"not a WAL position: {text[:40]!r} (e.g. 0/16B3748)")
    return int(found[1], 16) << 32 | int(found[2], 16)


def format_lsn(position: int) -> str:
    """``position`` as PostgreSQL writes a ``pg_lsn`` (the inverse of ``parse_lsn``)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def commit_position(session: AsyncSession) -> int:
    """The primary's WAL position, read on ``session`` (bound to the primary) after its
    COMMIT: one statement on the driver, outside any transaction (no BEGIN)."""
    connection = await checkout.connection(session)
    ((position,),) = await reader.fetch(connection, POSITION)
    return int(position)


class State(Enum):
    """What the last check found of a replica."""

    #: Not checked yet: not used.
    UNKNOWN = "unknown"
    OK = "ok"
    #: Further behind than ``MAX_REPLICA_LAG_SECONDS`` (or how far unknown).
    LAGGING = "lagging"
    DOWN = "down"


@dataclass(eq=False)
class Replica:
    """One replica: its engine and sessions, and what the last check found."""

    index: int
    engine: AsyncEngine
    sessions: ReadSessions
    state: State = State.UNKNOWN
    #: The WAL position it had replayed when last checked (a lower bound).
    replayed: int = 0
    #: Seconds behind the primary when last checked; ``None`` when not known.
    lag: float | None = None
    #: ``time.monotonic()`` before which every commit is known replayed here.
    as_of: float = -math.inf

    @property
    def host(self) -> str:
        """Its host, port and database, without credentials (for logs and ``/readyz``)."""
        url = make_url(self.engine.url)
        return f"{url.host}:{url.port or 5432}/{url.database}"


class Replicas:
    """The process's replicas, and the primary's read sessions: where each query operation
    reads (``choose``). ``max_lag`` is ``MAX_REPLICA_LAG_SECONDS``; ``interval`` is
    ``REPLICA_CHECK_SECONDS`` (how long the primary's positions are remembered follows
    from both)."""

    def __init__(
        self, primary: ReadSessions, replicas: list[Replica], max_lag: float, interval: float
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag = max_lag
        self.interval = interval
        self._turn = 0
        #: Viewer id -> the WAL position of their last commit here, oldest first.
        self._pins: dict[int, int] = {}
        #: (``time.monotonic()`` before reading it, the primary's WAL position), oldest first:
        #: every commit that returned before that time is at or before that position.
        self.samples: deque[tuple[float, int]] = deque(maxlen=math.ceil(max_lag / interval) + 2)

    def choose(
        self, after: int | None, subject: int | None, since: float = -math.inf
    ) -> tuple[ReadSessions, float]:
        """The read sessions of a query operation, and the ``time.monotonic()`` before which
        every commit is visible through them (``math.inf`` for the primary's). ``after`` is
        a position the request carries (``READ_AFTER_HEADER``), ``subject`` the viewer's id,
        ``since`` a ``time.monotonic()`` before which every commit must be visible: the next
        healthy replica (in turn) known to have replayed the position, the viewer's pin and
        every commit made before ``since``, else the primary."""
        need = after or 0
        if subject is not None and (pinned := self._pins.get(subject)) is not None:
            need = max(need, pinned)
        count = len(self.replicas)
        for step in range(count):
            at = (self._turn + step) % count
            replica = self.replicas[at]
            if replica.state is State.OK and replica.replayed >= need and replica.as_of >= since:
                self._turn = at + 1
                return replica.sessions, replica.as_of
        return self.primary, math.inf

    def pin(self, subject: int, position: int) -> None:
        """Read ``subject``'s queries in this process where ``position`` (their commit's) is
        replayed, until every replica has replayed it."""
        self._pins.pop(subject, None)
        self._pins[subject] = position
        if len(self._pins) > MAX_PINS:
            del self._pins[next(iter(self._pins))]

    def failed(self, sessions: ReadSessions, error: BaseException) -> None:
        """A read through ``sessions`` (a replica's) failed with ``error``: if that means the
        replica cannot be reached (``db.errors.is_unavailable``), skip it until a check finds
        it well. A full pool (no connection free within ``DB_POOL_TIMEOUT``) says nothing of
        the replica: that operation reads on the primary, and the replica keeps its state."""
        if not is_unavailable(error) or isinstance(error, PoolTimeout):
            return
        for replica in self.replicas:
            if replica.sessions is sessions and replica.state is not State.DOWN:
                self._set(replica, State.DOWN, None, error)

    def observe(
        self,
        replica: Replica,
        replayed: int | None,
        clock_lag: float | None,
        error: BaseException | None = None,
    ) -> None:
        """Record a check of ``replica``: the position it has replayed (``None``: it could
        not be reached, or is no standby; ``error`` says why) and its own estimate of its lag
        (``now() - pg_last_xact_replay_timestamp()``, ``None`` if it has replayed no
        transaction), measured after the primary's latest sample. A replica that has
        replayed the newest sample is 0 s behind if that sample is recent; else at least the
        sample's age (the primary has not been read since: how far it is now is unknown)."""
        if replayed is None:
            self._set(replica, State.DOWN, None, error)
            return
        replica.replayed = replayed
        now = time.monotonic()
        newest = self.samples[-1] if self.samples else None
        caught_up = [at for at, position in self.samples if position <= replayed]
        if caught_up:
            replica.as_of = caught_up[-1]
        if newest is not None and replayed >= newest[1]:
            # It has everything the primary had when last asked: 0 s behind, unless that
            # was long ago (the primary's checks failing since).
            age = now - newest[0]
            lag: float | None = 0.0 if age <= self.max_lag else age
        elif caught_up:
            lag = now - caught_up[-1]
        else:  # behind every position remembered: the replica's own clock-based estimate
            oldest = now - self.samples[0][0] if self.samples else 0.0
            lag = None if clock_lag is None else max(clock_lag, oldest)
        usable = lag is not None and lag <= self.max_lag
        self._set(replica, State.OK if usable else State.LAGGING, lag)
        if self._pins:
            self._forget_pins()

    def _set(
        self, replica: Replica, state: State, lag: float | None, error: BaseException | None = None
    ) -> None:
        if state is not replica.state:  # every change, once
            how = f"{lag:.1f} s behind" if lag is not None else "lag unknown"
            if error is not None:
                how = describe(error)
            level = logging.INFO if state is State.OK else logging.WARNING
            logger.log(level, "replica %s is %s (%s)", replica.host, state.value, how)
        replica.state, replica.lag = state, lag

    def _forget_pins(self) -> None:
        everywhere = min(replica.replayed for replica in self.replicas)
        for subject in [s for s, position in self._pins.items() if position <= everywhere]:
            del self._pins[subject]

    def report(self) -> list[dict[str, Any]]:
        """Each replica's state and lag in seconds, for ``/readyz``."""
        return [
            {
                "replica": replica.index,
                "host": replica.host,
                "state": replica.state.value,
                "lagSeconds": None if replica.lag is None else round(replica.lag, 3),
            }
            for replica in self.replicas
        ]


def describe(error: BaseException) -> str:
    """``error`` as one line for a log: its type and the first line of its message (which,
    from asyncpg or SQLAlchemy, names no password)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__


def replica_set(settings: Settings, primary: ReadSessions) -> Replicas | None:
    """The replicas of ``DATABASE_REPLICA_URLS``, each with an engine made like the primary's
    (``db.engine.create_engine``) and query sessions bound to it, and ``primary`` (the
    primary's query sessions); ``None`` when there are none. Not checked yet: none is used
    until ``db.replica_monitor.ReplicaMonitor.check`` finds it well."""
    if not settings.database_replica_urls:
        return None
    replicas = []
    for index, url in enumerate(settings.database_replica_urls):
        engine = create_engine(settings, url=url)
        sessions = ReadSessions(create_sessionmaker(engine), settings.db_pool_size)
        replicas.append(Replica(index, engine, sessions))
    return Replicas(
        primary, replicas, settings.max_replica_lag_seconds, settings.replica_check_seconds
    )
