"""Each process's check of its read replicas, every ``REPLICA_CHECK_SECONDS``: the primary's
WAL position, then each replica's replayed position and its own lag estimate, recorded in
``db.replicas.Replicas`` (which decides who is healthy).

The checks run on connections of their own, one per server, kept open between checks and
opened again after a failure, outside the pools: a pool that still holds connections a
restarted replica dropped would make a check fail once per dead connection, and a check
belongs to no operation (no statement counted). Each is bounded by a timeout, so a replica
that hangs is found down rather than waited for.
Source: PostgreSQL docs, "System Administration Functions" (``pg_current_wal_lsn``,
``pg_last_wal_replay_lsn``, ``pg_last_xact_replay_timestamp``), "Monitoring" (replication
lag); asyncpg API reference (``connect``, ``Connection.terminate``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

from db.replicas import Replica, Replicas, describe

logger = logging.getLogger("inkwell.replicas")

PRIMARY = "SELECT pg_current_wal_lsn()"
#: The position replayed (NULL on a server that is not a standby), and the replica's own
#: estimate of its lag in seconds (its clock against the primary's commit timestamps).
REPLICA = (
    "SELECT pg_last_wal_replay_lsn(), "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


class ReplicaMonitor:
    """Checks ``replicas`` against the primary at ``primary`` (its SQLAlchemy URL):
    ``check`` once, ``run`` until cancelled, ``close`` at the end."""

    def __init__(self, replicas: Replicas, primary: URL) -> None:
        self.replicas = replicas
        self._primary = primary
        self._connections: dict[object, asyncpg.Connection] = {}
        #: The primary's position could not be read at the last check (logged once).
        self._primary_failing = False

    async def _row(self, key: object, url: URL, sql: str) -> Any:
        connection = self._connections.get(key)
        try:
            if connection is None or connection.is_closed():
                # Host, port, user, password and database only, as the event broker connects
                # (``schema.live.postgres``): the URL's query holds SQLAlchemy's options.
                connection = await asyncpg.connect(
                    **url.translate_connect_args(username="user"),
                    server_settings={"application_name": "inkwell"},
                )
                self._connections[key] = connection
            return await connection.fetchrow(sql)
        except BaseException:
            self._drop(key)
            raise

    def _drop(self, key: object) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.terminate()  # no I/O: a cancelled or failed check leaves nothing behind

    async def check(self) -> None:
        """Check every replica once (concurrently), after reading the primary's position. A
        primary that cannot be read adds no position (replicas are then judged by what the
        positions already known tell, else by their own estimate); a failure is logged in
        one line when it changes a state (``Replicas.observe``). Raises nothing a server can
        cause."""
        replicas = self.replicas
        timeout = max(2 * replicas.interval, 1.0)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                row = await self._row(self, self._primary, PRIMARY)
            replicas.samples.append((started, int(row[0])))
        except Exception as exc:
            if not self._primary_failing:  # once per outage
                logger.warning("replica check: the primary's WAL position: %s", describe(exc))
            self._primary_failing = True
        else:
            if self._primary_failing:
                logger.info("replica check: the primary's WAL position is read again")
            self._primary_failing = False

        async def one(replica: Replica) -> None:
            try:
                async with asyncio.timeout(timeout):
                    row = await self._row(replica, replica.engine.url, REPLICA)
            except TimeoutError:
                answer = TimeoutError(f"no answer within {timeout:g} s")
                replicas.observe(replica, None, None, answer)
                return
            except Exception as exc:
                replicas.observe(replica, None, None, exc)
                return
            if row[0] is None:  # not a standby: never read from it
                replicas.observe(replica, None, None, ValueError("not a standby"))
                return
            replicas.observe(replica, int(row[0]), row[1])

        await asyncio.gather(*(one(replica) for replica in replicas.replicas))

    async def run(self) -> None:
        """``check`` every ``REPLICA_CHECK_SECONDS``, until cancelled. A check that raises
        (a bug: it catches what a server can do) is logged in one line and the next one
        runs, so the replicas' states never freeze."""
        while True:
            await asyncio.sleep(self.replicas.interval)
            try:
                await self.check()
            except Exception as exc:
                logger.error("replica check failed: %s", describe(exc))

    def close(self) -> None:
        """Close the monitor's connections (without waiting for the servers)."""
        for key in list(self._connections):
            self._drop(key)
