"""Garbage-collector settings for a server process.

A request builds tens of thousands of short-lived containers (rows, objects, response dicts),
and CPython's cyclic collector runs a generation-0 pass every 700 net allocations and a full
pass that walks every tracked object, the whole start-up heap of imported modules, schema and
ORM mappers included. Under 16 concurrent nested reads that was most of the CPU time.

So, once start-up is done: ``gc.freeze()`` moves everything alive into the permanent
generation (never scanned again), and higher thresholds make passes rarer. Memory stays
bounded: reference counting still frees every acyclic object at once, and cycles are still
collected, every ``threshold[0]`` allocations instead of 700.
Source: Python docs, ``gc.freeze`` ("... avoid copy-on-write ... and to make collections
faster"); Instagram Engineering, "Dismissing Python Garbage Collection at Instagram" (2017).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("inkwell.gc")


@contextmanager
def tuned(thresholds: tuple[int, int, int] | None) -> Iterator[None]:
    """While the block runs (an app's life, after its start-up): the heap that survived one
    collection is frozen, and the collector's ``thresholds`` are set (generation-0
    allocations, then generation-1 and -2 pass counts; see ``gc.set_threshold``). On exit the
    previous thresholds come back and the frozen objects become collectable again, so a
    process that starts and stops apps (the tests) does not keep each one's heap forever.
    ``None`` changes nothing."""
    if thresholds is None:
        yield
        return
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.debug("gc: froze %d objects, thresholds %s", gc.get_freeze_count(), thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
