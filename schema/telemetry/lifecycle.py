"""A worker's telemetry from start to end: its periodic samples, and its mark as dead when it
stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from schema.telemetry import exposition, repeats
from schema.telemetry.runtime import Sampler
from settings import Settings


@contextlib.asynccontextmanager
async def observed(engine: Any, settings: Settings, replicas: Any = None) -> AsyncIterator[Sampler]:
    """For the body of an app's lifespan: this worker's runtime, pool and (given
    ``replicas``, a ``db.replicas.Replicas``) replica gauges sampled now and
    every ``METRICS_SAMPLE_SECONDS`` (with the rate-limited log lines that are due:
    ``schema.telemetry.repeats``), and at the end every rate-limited count written and the
    worker marked dead for the metrics. Yields the sampler (``/metrics`` samples first)."""
    sampler = Sampler(engine, replicas)
    sampler.sample()
    task = asyncio.create_task(_every(sampler, settings.metrics_sample_seconds))
    try:
        yield sampler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        repeats.flush(everything=True)
        exposition.worker_exit()


async def _every(sampler: Sampler, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        sampler.sample()
        repeats.flush()
