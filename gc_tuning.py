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

logger = logging.getLogger("inkwell.gc")


def tune(thresholds: tuple[int, int, int]) -> None:
    """Collect once, freeze the surviving heap and set the collector's ``thresholds``
    (generation 0 allocations, then generation-1 and -2 pass counts; see
    ``gc.set_threshold``). Call it after start-up; a server process calls it once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.debug("gc: froze %d objects, thresholds %s", gc.get_freeze_count(), thresholds)
