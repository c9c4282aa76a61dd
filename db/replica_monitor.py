"""Each process's check of its read replicas, every ``REPLICA_CHECK_SECONDS``: the primary's
WAL position, then each replica's replayed position and its own lag estimate, recorded in
``db.replicas.Replicas`` (which decides who is healthy).

The statements run on the driver connection of a pooled connection (no transaction, no
statement counted into any operation: they belong to none), bounded by a timeout, so a
replica that hangs is found down rather than waited for.
Source: PostgreSQL docs, "System Administration Functions" (``pg_current_wal_lsn``,
``pg_last_wal_replay_lsn``, ``pg_last_xact_replay_timestamp``), "Monitoring" (replication
lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from db.replicas import Replica, Replicas

PRIMARY = "SELECT pg_current_wal_lsn()"
#: The position replayed, and the replica's own estimate of its lag (seconds; its clock and
#: the primary's must agree): used only when the primary's positions do not tell.
REPLICA = (
    "SELECT pg_last_wal_replay_lsn(), "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


async def _row(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return await raw.driver_connection.fetchrow(sql)  # type: ignore[union-attr]


async def check(replicas: Replicas, primary: AsyncEngine) -> None:
    """Check every replica once (concurrently), after reading the primary's position. A
    primary that cannot be read adds no position (replicas are then judged by what the
    positions already known tell, else by their own estimate). Never raises."""
    timeout = max(2 * replicas.interval, 1.0)
    started = time.monotonic()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            row = await _row(primary, PRIMARY)
        replicas.samples.append((started, int(row[0])))

    async def one(replica: Replica) -> None:
        try:
            async with asyncio.timeout(timeout):
                row = await _row(replica.engine, REPLICA)
        except Exception:
            replicas.observe(replica, None, None)
            return
        if row[0] is None:  # not a standby (or not replaying): never read from it
            replicas.observe(replica, None, None)
            return
        replicas.observe(replica, int(row[0]), row[1])

    await asyncio.gather(*(one(replica) for replica in replicas.replicas))


async def monitor(replicas: Replicas, primary: AsyncEngine) -> None:
    """``check`` every ``replicas.interval`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(replicas.interval)
        await check(replicas, primary)
