"""Token buckets kept as one number each: the Generic Cell Rate Algorithm, in process memory.

A token bucket of ``capacity`` points refilled at ``per_second`` points a second lets an
operation costing ``cost`` points through when the bucket holds at least that many, and
takes them out. GCRA computes the same decisions from one number per bucket instead of a
level and a timestamp: the *theoretical arrival time* (TAT), when the bucket would be full
again. With ``interval = 1 / per_second`` seconds per point, a charge at ``now`` is
``new = max(TAT, now) + cost * interval``; it passes when ``new - now <= capacity *
interval`` (the points it would leave missing fit in the bucket) and then ``TAT = new``;
refused, it must wait ``new - now - capacity * interval`` seconds and changes nothing. A bucket
whose TAT has passed is full, so it needs no entry at all: that is why Redis keys expire then
(``schema.engine.rate_limits.redis_buckets``) and why this module may forget the least
recently used buckets to stay bounded (a forgotten bucket is a full one).
Sources: ITU-T I.371, "Traffic control and congestion control in B-ISDN", the Generic Cell
Rate Algorithm (virtual scheduling form); RFC 2697, "A Single Rate Three Color Marker"
(§3: the token bucket, its committed burst size and rate); B. Leach, "Rate limiting, cells,
and GCRA" (brandur.org, 2015).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

#: Seconds of wait too small to refuse for: the rounding of ``max(TAT, now) + cost *
#: interval - now`` (a full bucket charged its whole capacity must pass).
TOLERANCE = 1e-6
#: Buckets one process remembers at most: past that, the least recently charged are
#: forgotten (they refill to full). About 150 bytes each.
PROCESS_BUCKETS = 50_000


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket's size: ``capacity`` points (positive), refilled at ``per_second``
    points a second (positive)."""

    capacity: float
    per_second: float

    @property
    def interval(self) -> float:
        """Seconds one point takes to come back."""
        return 1.0 / self.per_second


@dataclass(frozen=True, slots=True)
class Charge:
    """``cost`` points (positive, at most the bucket's capacity) out of the bucket named
    ``key`` of size ``bucket``."""

    key: str
    bucket: Bucket
    cost: float


class ProcessBuckets:
    """Buckets in this process's memory, at most ``size`` of them, on ``time.monotonic``."""

    def __init__(self, size: int = PROCESS_BUCKETS) -> None:
        self.size = size
        #: TAT (``time.monotonic`` seconds) by key, least recently charged first.
        self._tats: OrderedDict[str, float] = OrderedDict()

    async def charge(self, charges: Sequence[Charge]) -> float:
        """Take every charge, or none: ``0.0`` when all of them fit, else the seconds to
        wait until they would (the longest of the buckets' waits)."""
        return self.take(charges)

    def take(self, charges: Sequence[Charge]) -> float:
        """``charge``, synchronously (it never waits for anything)."""
        now = time.monotonic()
        tats = self._tats
        wait, new = 0.0, []
        for charge in charges:
            tat = max(tats.get(charge.key, now), now) + charge.cost * charge.bucket.interval
            wait = max(wait, tat - now - charge.bucket.capacity * charge.bucket.interval)
            new.append(tat)
        if wait > TOLERANCE:
            return wait
        for charge, tat in zip(charges, new, strict=True):
            tats[charge.key] = tat
            tats.move_to_end(charge.key)
        while len(tats) > self.size:
            tats.popitem(last=False)
        return 0.0
