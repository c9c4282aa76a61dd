"""``/metrics``: this process's metrics or, with several workers, every live worker's.

With several workers (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``)
each worker writes its values to files named after its pid in that directory, and a scrape
reads them all. A worker that ends must be marked dead (``mark_process_dead``), or its
``live*`` gauges stay: ``inkwell_event_listener_connected{pid=...} 0`` after a restart read
as a listener down, a false alert. A worker marks itself as it shuts down (``worker_exit``),
but one that was killed cannot, and uvicorn has no hook for a worker's death, so each scrape
first marks dead every pid with files whose process is gone (``forget_dead_workers``).
Counters and histograms of dead workers are kept, so totals never go back.
Source: prometheus-client docs, "Multiprocess Mode" (``mark_process_dead``, gauge modes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

#: prometheus-client's multiprocess mode: where worker processes keep their metrics.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: The pid at the end of a metrics file's name: ``gauge_liveall_1234.db``.
_PID = re.compile(r"_(\d+)\.db$")


def directory() -> Path | None:
    """The multiprocess directory, when this process is one of several workers."""
    found = os.environ.get(MULTIPROCESS_DIR)
    return Path(found) if found else None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def forget_dead_workers(folder: Path) -> list[int]:
    """Mark dead every pid that has files in ``folder`` and no process; returns them."""
    pids = {int(match.group(1)) for path in folder.iterdir() if (match := _PID.search(path.name))}
    dead = sorted(pid for pid in pids if not alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(folder))
    return dead


def worker_exit() -> None:
    """Mark this worker dead: its ``live*`` gauges leave the scrapes (a no-op with one
    process)."""
    folder = directory()
    if folder is not None:
        multiprocess.mark_process_dead(os.getpid(), str(folder))


def scrape() -> tuple[bytes, str]:
    """The exposition's body and media type (Prometheus's text format)."""
    folder = directory()
    if folder is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    forget_dead_workers(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(folder))
    return generate_latest(registry), CONTENT_TYPE_LATEST
