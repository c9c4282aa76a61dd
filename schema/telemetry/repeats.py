"""Identical log lines rate-limited: one per interval, with how many were left out.

A database outage makes every request log the same warning ("database unavailable: ...");
a 20 s outage under load wrote thousands of identical lines, which bury everything else and
cost the disk. ``RepeatedLines`` is a ``logging.Filter`` on the handler: the first line of a
kind (same logger, level and text) goes through; the same line again within ``seconds`` is
counted instead; the first one after the interval goes through carrying ``repeated``, the
count left out since the previous. Lines left out that no later line reports are written by
``flush`` (the last of them, late, with ``repeated`` the others), which the metrics sampler
calls every few seconds, and for every kind when a worker shuts down. So each line written
stands for itself and ``repeated`` more: their sum is the number of times it was logged.

Only warnings and worse are limited: the one line per operation (``inkwell.operation``) and
the SQL log (``inkwell.sql``) are never merged, as each line is about something else. Each
worker process limits its own lines.
Source: Python docs, ``logging.Filter`` (a filter may change the record, 3.2+).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

#: Loggers whose lines each report a distinct event.
NEVER_MERGED = ("inkwell.operation", "inkwell.sql")

_filters: weakref.WeakSet[RepeatedLines] = weakref.WeakSet()


class RepeatedLines(logging.Filter):
    """Lets through one line per ``seconds`` of each kind of warning (or worse); 0 lets
    everything through."""

    def __init__(self, seconds: float = 10.0) -> None:
        super().__init__()
        self.seconds = seconds
        #: Per kind (logger, level, text): when its interval began, lines left out since.
        self._seen: dict[tuple[str, int, str], list[float]] = {}
        self._lock = threading.Lock()
        _filters.add(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            self.seconds <= 0
            or record.levelno < logging.WARNING
            or record.name.startswith(NEVER_MERGED)
            or hasattr(record, "repeated")  # a summary ``flush`` wrote
        ):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.seconds:
                seen[1] += 1
                return False
            self._seen[key] = [now, 0]
        if seen is not None and seen[1]:
            record.repeated = int(seen[1])
        return True

    def flush(self, *, everything: bool = False) -> None:
        """For each kind whose interval has passed (``everything``: each kind) with lines
        left out and no later line to carry the count, write the last of them, with
        ``repeated`` the others; forget those kinds, so their next line goes through at
        once."""
        now = time.monotonic()
        with self._lock:
            due = [
                (key, seen)
                for key, seen in self._seen.items()
                if everything or now - seen[0] >= self.seconds
            ]
            for key, _ in due:
                del self._seen[key]
        for (name, level, text), (_, count) in due:
            if count:
                # The last line left out, late, counting the others: so every line written
                # stands for itself and ``repeated`` more.
                logging.getLogger(name).log(level, "%s", text, extra={"repeated": int(count) - 1})


def flush(*, everything: bool = False) -> None:
    """``RepeatedLines.flush`` of every such filter in the process."""
    for found in list(_filters):
        found.flush(everything=everything)
