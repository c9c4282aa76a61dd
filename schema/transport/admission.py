"""A cap on the GraphQL operations one process runs at once; the rest wait their turn.

An event loop runs every ready task once per turn, so a turn lasts as long as the work of
everything in flight. The result of a subscription's event (``schema.live.prepared``) takes
about ten turns of the loop in sequence (its statements, its DataLoaders, waking each
subscriber), so with 16 nested reads in flight on a worker each of those turns waited behind
16 slices of other requests' work, and subscribers got their events seconds late under a
saturating read load. Past the point where the CPU is busy, more operations at once add no
throughput, only latency, for them and for everything else the process does. Here an HTTP
operation starts only when fewer than ``limit`` run; otherwise it waits, parked (no CPU,
nothing per turn), first come first served, until one ends. Its request has been read by then
(a slow client holds no place), and a client that leaves while waiting is simply gone
(``schema.transport.disconnect``). ``/healthz``, ``/metrics``, the events' own reads and
WebSocket operations never wait here.
Source: Python docs, ``asyncio`` ("Developing with asyncio": a task runs until its next
``await``); J. D. C. Little (1961), "A proof for the queuing formula L = λW": at a fixed
throughput, more work in flight is more time in the system for each piece of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Gauge

WAITING = Gauge(
    "inkwell_operations_waiting",
    "GraphQL operations over HTTP waiting for their turn (MAX_CONCURRENT_OPERATIONS).",
    multiprocess_mode="livesum",
)


class Admission:
    """Lets at most ``limit`` (a positive int) operations in at once, first come, first
    served (``asyncio.Semaphore``'s waiters are woken in order); ``limit=None`` lets every
    one in. One per process (its event loop)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        #: Operations holding a place now.
        self.running = 0
        self._places = asyncio.Semaphore(limit) if limit is not None else None

    @contextlib.asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold a place for the body of the ``async with``; waits while every place is
        taken. A wait cancelled (the client left) takes no place."""
        places = self._places
        if places is not None:
            if places.locked():
                WAITING.inc()
                try:
                    await places.acquire()
                finally:
                    WAITING.dec()
            else:
                await places.acquire()  # a free place: returns without suspending
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            if places is not None:
                places.release()
