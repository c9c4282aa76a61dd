"""Per-worker figures, sampled: the Python runtime's (memory, CPU, open files, garbage
collection) and the connection pool's (connections checked out, overflow).

prometheus-client's multiprocess mode leaves out its process and platform collectors and
custom collectors: a scrape is answered by one worker, which can only read its own process
and its own pool. So each worker copies the figures into gauges of its own (``liveall``: one
series per live worker, labelled by ``pid``, gone when the worker is marked dead) every
``METRICS_SAMPLE_SECONDS`` (``schema.telemetry.lifecycle``), and the worker answering a
scrape samples itself first. The
runtime figures are those of prometheus-client's own ``ProcessCollector`` and
``GCCollector`` (their public ``collect()``), renamed ``inkwell_process_*`` and
``inkwell_python_gc_*`` (without ``_total``: a gauge's value is set, not counted).
Source: prometheus-client docs, "Multiprocess Mode" (gauge modes, what it does not support)
and "Collector"; SQLAlchemy docs, "Connection Pooling" (``QueuePool``).
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, GCCollector, ProcessCollector
from sqlalchemy.pool import QueuePool

#: The standard collectors, in a registry of their own that nothing serves: read, copied.
_STANDARD = CollectorRegistry()
ProcessCollector(registry=_STANDARD)
GCCollector(registry=_STANDARD)
#: Mirror gauges by sample name, made on first use.
_mirrors: dict[str, Gauge] = {}

POOL_CHECKED_OUT = Gauge(
    "inkwell_db_pool_checked_out",
    "Database connections this worker's pool has lent out.",
    multiprocess_mode="liveall",
)
POOL_OVERFLOW = Gauge(
    "inkwell_db_pool_overflow",
    "Connections open beyond the pool's size (DB_MAX_OVERFLOW bounds them); negative while "
    "the pool has not opened all of its own.",
    multiprocess_mode="liveall",
)
POOL_SIZE = Gauge(
    "inkwell_db_pool_size",
    "Connections the pool keeps (DB_POOL_SIZE).",
    multiprocess_mode="liveall",
)


REPLICA_UP = Gauge(
    "inkwell_db_replica_up",
    "1 while this worker reads from the replica (by its index in DATABASE_REPLICA_URLS, from "
    "0): reachable and within MAX_REPLICA_LAG_SECONDS at its last check; 0 while skipped.",
    ["replica"],
    multiprocess_mode="liveall",
)
REPLICA_LAG = Gauge(
    "inkwell_db_replica_lag_seconds",
    "Seconds the replica was behind the primary at this worker's last check (NaN: unknown, "
    "as when it is down).",
    ["replica"],
    multiprocess_mode="liveall",
)


def sample_runtime() -> None:
    """Copy this process's runtime figures into its ``inkwell_process_*`` and
    ``inkwell_python_gc_*`` gauges."""
    for family in _STANDARD.collect():
        for sample in family.samples:
            gauge = _mirrors.get(sample.name)
            if gauge is None:
                gauge = _mirrors[sample.name] = Gauge(
                    "inkwell_" + sample.name.removesuffix("_total"),
                    family.documentation + " (this worker's, sampled)",
                    list(sample.labels),
                    multiprocess_mode="liveall",
                )
            (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)


def sample_pool(pool: Any) -> None:
    """Copy ``pool``'s figures into the pool gauges (a pool that is not a ``QueuePool``,
    SQLite's in-memory one, has none)."""
    if isinstance(pool, QueuePool):
        POOL_CHECKED_OUT.set(pool.checkedout())
        POOL_OVERFLOW.set(pool.overflow())
        POOL_SIZE.set(pool.size())


def sample_replicas(replicas: Any) -> None:
    """Copy what the last check found of each replica (``db.replicas.Replicas.report``) into
    the replica gauges."""
    for found in replicas.report():
        label = str(found["replica"])
        REPLICA_UP.labels(label).set(1 if found["state"] == "ok" else 0)
        lag = found["lagSeconds"]
        REPLICA_LAG.labels(label).set(math.nan if lag is None else lag)


class Sampler:
    """Samples this process's figures, ``engine``'s pool (an ``AsyncEngine``) and the read
    replicas (``db.replicas.Replicas``, or ``None``)."""

    def __init__(self, engine: Any, replicas: Any = None) -> None:
        self.engine = engine
        self.replicas = replicas

    def sample(self) -> None:
        """Update every gauge this module keeps."""
        sample_runtime()
        sample_pool(self.engine.pool)
        if self.replicas is not None:
            sample_replicas(self.replicas)
