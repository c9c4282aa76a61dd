"""Counts beside each item (``postCount``, ``commentCount``) against the same numbers read as
connections' ``totalCount``, side by side in one run (issue 21, part 3).

    .venv/bin/python bench/counts.py [--database-url URL] [--users 1000] [--skip-seed]
        [--rounds 3] [--duration 5] [--warmup 2] [--concurrency 8] [--port 8400]

Seeds the database with ``bench/run.py``'s seed (unless ``--skip-seed``), then:

1. statements per request: a development server with ``SQL_STATS=true`` answers each query
   once, anonymously (``extensions.sql.statements``); the answers of a pair must give the
   same numbers;
2. req/s: a production server (``bench/run.py``'s settings, pinned to CPU 0) under a closed
   loop of ``--concurrency`` keep-alive connections from this process (pinned to CPU 1, the
   raw client of ``bench/run.py``), the two queries of each pair alternated for ``--rounds``
   rounds, so each ratio compares runs minutes apart at most. The machine is shared: only
   the same-run ratios mean anything.

The ``totalCount`` forms ask for ``first: 0``, the cheapest page a client could ask for
before the count fields (a connection still reads one row per parent to tell
``hasNextPage``). ``tags`` ordered by ``POST_COUNT`` has no ``totalCount`` form: before it,
a client read every tag's count and sorted them itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import run

#: name -> (query with the count fields, the same numbers through connections).
PAIRS = {
    "tags": (
        "{ tags(first: 50) { nodes { name postCount } } }",
        "{ tags(first: 50) { nodes { name posts(first: 0) { totalCount } } } }",
    ),
    "posts": (
        "{ posts(first: 20) { nodes { title commentCount author { name postCount } } } }",
        "{ posts(first: 20) { nodes { title comments(first: 0) { totalCount }"
        " author { name posts(first: 0) { totalCount } } } } }",
    ),
}
CLOUD = (
    "{ tags(first: 50, orderBy: {field: POST_COUNT, direction: DESC})"
    " { nodes { name postCount } } }"
)


class QueryClient(run.Client):
    """One connection's requests: always ``query``, anonymously."""

    def __init__(self, query: str) -> None:
        self.workload, self.headers = "counts", {}
        self._body = json.dumps({"query": query}).encode()

    def body(self) -> bytes:
        return self._body

    def failure(self, status: int, body: bytes) -> str:
        if status != 200:
            return f"HTTP {status}"
        return "GraphQL errors" if b'"errors"' in body else ""


def counts_of(data: Any) -> list[int]:
    """Every count in an answer, in order, whichever form asked for it."""
    found: list[int] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("postCount", "commentCount", "totalCount"):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(data)
    return found


def statements(port: int, query: str) -> tuple[int, list[int]]:
    """The statements one anonymous request of ``query`` ran, and the counts it answered."""
    doc = run.post_graphql(port, json.dumps({"query": query}).encode(), 60)
    if "errors" in doc:
        raise RuntimeError(f"{query}: {doc['errors']}")
    return doc["extensions"]["sql"]["statements"], counts_of(doc["data"])


async def throughput(port: int, query: str, args: argparse.Namespace) -> float:
    """req/s of ``query`` over ``args.duration`` seconds after ``args.warmup``."""
    spec = run.LoadSpec(port, None, [], args.concurrency, args.warmup, args.duration, 60)
    start = time.perf_counter()
    measure_from, stop_at = start + args.warmup, start + args.warmup + args.duration
    records: list[run.Record] = []
    await asyncio.gather(
        *(
            run.connection_loop(spec, QueryClient(query), measure_from, stop_at, records)
            for _ in range(args.concurrency)
        )
    )
    failures = [r for r in records if r[2]]
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0][2]}")
    return len([r for r in records if r[0] <= stop_at]) / args.duration


def start(args: argparse.Namespace, name: str, sql_stats: bool, log_dir: Path) -> run.Server:
    """``bench/run.py``'s server (batched) on ``--port``."""
    run.free_port = lambda: args.port  # the port range this benchmark was given
    return run.start_server(name, args.database_url, "batched", sql_stats, log_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/inkwell_counts"
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8400)
    args = parser.parse_args()
    if not args.skip_seed:
        asyncio.run(run.ensure_database(args.database_url))
        run.seed_database(args.database_url, args.users)
    log_dir = Path(run.ROOT / "bench" / "results" / "counts.logs")
    log_dir.mkdir(parents=True, exist_ok=True)

    print("| query | statements | same counts |\n|---|---:|---|")
    with run.running([start(args, "stats", True, log_dir)]) as [server]:
        for name, (counted, connections) in PAIRS.items():
            mine, theirs = statements(server.port, counted), statements(server.port, connections)
            same = mine[1] == theirs[1]
            print(f"| {name}: count fields | {mine[0]} | {same} |")
            print(f"| {name}: `totalCount` | {theirs[0]} | |")
        print(f"| tag cloud (`POST_COUNT`) | {statements(server.port, CLOUD)[0]} | |")

    if hasattr(os, "sched_setaffinity") and run.LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {run.LOAD_CPU})
    ratios: dict[str, list[float]] = {name: [] for name in PAIRS}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in PAIRS}
    with run.running([start(args, "load", False, log_dir)]) as [server]:
        for _ in range(args.rounds):
            for name, (counted, connections) in PAIRS.items():
                mine = asyncio.run(throughput(server.port, counted, args))
                theirs = asyncio.run(throughput(server.port, connections, args))
                rates[name].append((mine, theirs))
                ratios[name].append(mine / theirs)
    print("\n| pair | req/s count fields | req/s `totalCount` | ratio (median of rounds) |")
    print("|---|---:|---:|---:|")
    for name in PAIRS:
        mine = statistics.median(r[0] for r in rates[name])
        theirs = statistics.median(r[1] for r in rates[name])
        ratio = statistics.median(ratios[name])
        print(f"| {name} | {mine:.0f} | {theirs:.0f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
