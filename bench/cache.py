"""The anonymous response cache's hit path beside PostGraphile, on the shared peer harness.

    python bench/cache.py [--variant redis|process|off] [harness flags…]   # e.g. --rounds 3

Runs ``../shared/peers/run.py`` as ``bench/peers.py`` does (one uvicorn worker pinned to CPU
0, the harness's ``bench`` database, its account trigger and outbox installed), but with
Inkwell's queries sent **anonymously** (``bench/peers_queries.json`` with no
``Authorization``) and ``RESPONSE_CACHE=true``: W1 and W3 repeat the same documents and
variables, so after the warm-up nearly every request is a cache hit, served before anything is
parsed (``schema/engine/response_cache.py``). ``--variant redis`` (the default) keeps the cache
in Redis on 127.0.0.1:6379 under a prefix of this run's own; ``process`` in the worker's
memory; ``off`` runs the same anonymous queries with no cache, for reference.

The harness checks every server's answer against the database before timing. An anonymous
reader of Inkwell sees no drafts and no emails (PostGraphile runs without any auth here), so
Inkwell's W1 (emails) and W3 (post 17, a draft) are reported as ``MISMATCH`` by design and the
harness exits 1; the figures are still measured, with each server doing what its rules allow.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import peers

VARIANTS = {
    "redis": {"RESPONSE_CACHE": "true", "REDIS_URL": "redis://127.0.0.1:6379/0"},
    "process": {"RESPONSE_CACHE": "true"},
    "off": {"RESPONSE_CACHE": "false"},
}


def main(argv: list[str]) -> int:
    """Write the anonymous query set, then run the harness; returns its exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=False)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="redis")
    args, harness_flags = parser.parse_known_args(argv)
    sys.path.insert(0, str(peers.ROOT))
    import asyncio

    asyncio.run(peers._prepare())  # the trigger and the outbox, as for the signed-in run
    queries = json.loads(peers.QUERIES.read_text())
    anonymous = Path(tempfile.mkdtemp(prefix="inkwell-cache-")) / "queries.json"
    anonymous.write_text(json.dumps(queries))  # no headers: anonymous
    environment = {**peers.ENVIRONMENT, **VARIANTS[args.variant]}
    # A prefix of this run's own: nothing another run cached is served.
    environment["RESPONSE_CACHE_REDIS_PREFIX"] = f"inkwell:bench:{uuid.uuid4().hex}:"
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
    server = (
        f"cd {shlex.quote(str(peers.ROOT))} && {exports} exec {shlex.quote(sys.executable)} "
        "-m uvicorn server:app --host 127.0.0.1 --port {port} " + shlex.join(peers.UVICORN_FLAGS)
    )
    command = [
        "python3", str(peers.HARNESS / "run.py"),
        "--servers", "postgraphile,floor",
        "--workloads", "W1,W3",
        "--sut", server, "--sut-queries", str(anonymous),
        "--sut-name", f"inkwell-cache-{args.variant}",
        *harness_flags,
    ]  # fmt: skip
    return subprocess.run(command, cwd=peers.HARNESS, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
