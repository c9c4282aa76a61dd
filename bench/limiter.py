"""What one rate-limit charge costs, in the process and in Redis, measured in-process.

    python bench/limiter.py [--charges 20000] [--concurrency 16]

Calls ``RateLimits.charge_operation`` (``schema.engine.rate_limits``) as the ``RateLimit``
extension does for each operation, with a bucket too large ever to refuse, on 1,000 keys
(viewers) in turn: ``--charges`` times one after another, then the same number spread over
``--concurrency`` tasks at once (what a busy worker does), for each of

- ``process``: ``ProcessBuckets``, the buckets in the worker's memory (no ``REDIS_URL``);
- ``redis``: ``RedisBuckets`` on 127.0.0.1:6379 (one ``EVALSHA`` of the GCRA script per
  charge), under a prefix of this run's own, deleted afterwards.

Reports microseconds of wall time per charge (sequential: one charge's latency; concurrent:
the event loop's cost per charge when round trips overlap) and of this process's CPU time per
charge, which is what the charge takes from a worker's request budget. Needs Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schema.engine.rate_limits.buckets import ProcessBuckets  # noqa: E402
from schema.engine.rate_limits.policy import RateLimits  # noqa: E402
from schema.engine.rate_limits.redis_buckets import RedisBuckets  # noqa: E402
from schema.engine.redis_link import RedisLink  # noqa: E402
from settings import Settings  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"
#: A bucket no run empties: every charge is taken, as on a server under its limits.
SETTINGS = Settings(rate_limit_points=10**9, rate_limit_points_per_second=10**9)
VIEWERS = 1000


def contexts() -> list[Any]:
    """Operation contexts as the extension sees them: a viewer and a measured cost."""
    viewers = [SimpleNamespace(id=i) for i in range(VIEWERS)]
    return [SimpleNamespace(viewer=viewer, cost=50, request=None) for viewer in viewers]


async def measure(limits: RateLimits, charges: int, concurrency: int) -> dict[str, float]:
    """Microseconds per charge: sequential wall and CPU, concurrent wall and CPU."""
    operations = contexts()
    for context in operations[:100]:  # warm: the script loaded, connections open
        await limits.charge_operation(context)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(charges):
        await limits.charge_operation(operations[i % VIEWERS])
    sequential = time.perf_counter() - wall, time.process_time() - cpu

    async def worker(start: int) -> None:
        for i in range(start, charges, concurrency):
            await limits.charge_operation(operations[i % VIEWERS])

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    together = time.perf_counter() - wall, time.process_time() - cpu
    scale = 1e6 / charges
    return {
        "sequential wall": sequential[0] * scale,
        "sequential cpu": sequential[1] * scale,
        "concurrent wall": together[0] * scale,
        "concurrent cpu": together[1] * scale,
    }


async def run(charges: int, concurrency: int) -> None:
    prefix = f"inkwell:bench:limiter:{uuid.uuid4().hex}:"
    link = RedisLink(REDIS)
    try:
        await link.client.execute_command("PING")  # fails here when Redis is missing
        results = {
            "process": await measure(RateLimits(SETTINGS, ProcessBuckets()), charges, concurrency),
            "redis": await measure(
                RateLimits(SETTINGS, RedisBuckets(link, prefix)), charges, concurrency
            ),
        }
        async for key in link.client.scan_iter(match=prefix + "*"):
            await link.client.delete(key)
    finally:
        await link.close()
    print(f"\n{charges:,} charges; concurrent: {concurrency} tasks; microseconds per charge\n")
    print("| buckets | sequential wall | sequential CPU | concurrent wall | concurrent CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, found in results.items():
        cells = " | ".join(f"{value:.1f}" for value in found.values())
        print(f"| {name} | {cells} |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--charges", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    asyncio.run(run(args.charges, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
