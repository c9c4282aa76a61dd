"""Issue 21: ``searchPosts`` (ranked full-text search) beside ``posts(filter: {search:})``.

    python bench/search.py [--dbname inkwell_search] [--users 10000] [--skip-seed]
                           [--rounds 3] [--duration 5] [--concurrency 8] [--port 8300]

Seeds a PostgreSQL database of its own with Inkwell's CLI (``server.py migrate``, then
``server.py seed --replace --users N --comments-per-post 1``: 10 posts per user, so 100,000
posts for the default 10,000 users), starts one uvicorn worker on it (``SQL_STATS=true``,
pinned to CPU 0 when ``taskset`` exists) and, for each query text, compares:

- ``substring``: ``posts(first: 10, filter: {search: $q}) { nodes { id title } }``, the
  case-insensitive substring filter on titles (unranked, id order);
- ``ranked``: ``searchPosts(query: $q, first: 10) { edges { rank node { id title } } }``;
- ``ranked+snippet``: the same with each edge's ``snippet`` (``ts_headline``).

The seed's text is drawn from a vocabulary of about 150 words, so every word is in thousands
of posts (``cursor`` in about 40 %): a ranked search there ranks every match, the worst
case; ``kangaroo`` is in none (the index answers at once, the substring filter scans all).

First each workload answers 5 sequential requests: the mean ``extensions.sql.statements``
and the number of posts found (checked: no errors). Then ``--rounds`` rounds, each running
every workload in turn for ``--duration`` seconds with ``--concurrency`` keep-alive
connections in a closed loop (httpx, on CPU 1); a workload's req/s is its median over the
rounds, and ratios are taken between workloads of the same run, so a machine busy with other
work slows all of them alike. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: A word in most posts, two words, a phrase, an exclusion, words rarer together, no match.
QUERIES = (
    "cursor",
    "connection pool",
    '"connection pool"',
    "cache -session",
    "strange benchmark",
    "kangaroo",
)
SUBSTRING = "query($q: String!) { posts(first: 10, filter: {search: $q}) { nodes { id title } } }"
RANKED = """query($q: String!) { searchPosts(query: $q, first: 10) {
  ... on PostSearchConnection { edges { rank node { id title } } }
  ... on InvalidSearchQuery { message } } }"""
SNIPPET = RANKED.replace("edges { rank", "edges { rank snippet")
WORKLOADS = {"substring": SUBSTRING, "ranked": RANKED, "ranked+snippet": SNIPPET}


def pin(cpu: int) -> list[str]:
    usable = hasattr(os, "sched_getaffinity") and cpu in os.sched_getaffinity(0)
    return ["taskset", "-c", str(cpu)] if usable and shutil.which("taskset") else []


def seed(url: str, users: int) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    for args in (
        ["migrate"],
        ["seed", "--replace", f"--users={users}", "--comments-per-post=1"],
    ):
        subprocess.run([sys.executable, "server.py", *args], cwd=ROOT, env=env, check=True)
    # Fresh statistics (the generated column's too), as autovacuum would gather in time.
    dbname = url.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", "-h", HOST, "-U", "postgres", "-d", dbname, "-c", "ANALYZE"], check=True
    )


def start(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ENVIRONMENT": "development",
        "SQL_STATS": "true",
        "GRAPHIQL": "false",
        "JWT_SECRET": "bench-search-" + "x" * 32,
    }
    options = f"--host {HOST} --port {port} --no-access-log --log-level warning".split()
    command = [*pin(0), sys.executable, "-m", "uvicorn", "server:app", *options]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server did not start: see {log}")


def body(workload: str, q: str) -> dict[str, Any]:
    return {"query": WORKLOADS[workload], "variables": {"q": q}}


def found(answer: dict[str, Any]) -> int:
    if "errors" in answer:
        raise SystemExit(f"errors: {answer['errors']}")
    data = answer["data"]
    if "posts" in data:
        return len(data["posts"]["nodes"])
    result = data["searchPosts"]
    if "edges" not in result:
        raise SystemExit(f"typed error: {result}")
    return len(result["edges"])


async def statements(client: httpx.AsyncClient, workload: str, q: str) -> tuple[float, int]:
    counts, rows = [], 0
    for _ in range(5):
        answer = (await client.post("/graphql", json=body(workload, q))).json()
        rows = found(answer)
        counts.append(answer["extensions"]["sql"]["statements"])
    return statistics.mean(counts), rows


async def load(base: str, payload: dict[str, Any], seconds: float, concurrency: int) -> float:
    """Requests per second over ``seconds`` with ``concurrency`` connections in a loop."""
    done = 0
    stop = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < stop:
            response = await client.post("/graphql", json=payload)
            response.raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        started = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return done / (time.monotonic() - started)


async def measure(args: argparse.Namespace, base: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        counted = {
            (w, q): await statements(client, w, q) for q in QUERIES for w in WORKLOADS
        }  # fmt: skip
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in counted}
    for _ in range(args.rounds):
        for q in QUERIES:
            for w in WORKLOADS:
                payload = body(w, q)
                await load(base, payload, 1, args.concurrency)  # warm-up
                rates[w, q].append(await load(base, payload, args.duration, args.concurrency))
    lines = [
        "| query | workload | posts found | statements/request | req/s (median) | ÷ substring |",
        "|---|---|---|---|---|---|",
    ]
    for q in QUERIES:
        base_rate = statistics.median(rates["substring", q])
        for w in WORKLOADS:
            mean, rows = counted[w, q]
            rate = statistics.median(rates[w, q])
            lines.append(
                f"| `{q}` | {w} | {rows} | {mean:g} | {rate:.1f} | {rate / base_rate:.2f} |"
            )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dbname", default="inkwell_search")
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args(argv)
    url = f"postgresql+asyncpg://postgres@{HOST}:5432/{args.dbname}"
    if not args.skip_seed:
        subprocess.run(["createdb", "-h", HOST, "-U", "postgres", args.dbname], check=False)
        seed(url, args.users)
    log = Path(f"/tmp/inkwell-bench-search-{args.port}.log")
    server = start(url, args.port, log)
    try:
        if pin(1):
            os.sched_setaffinity(0, {1})  # the load on CPU 1, the server on CPU 0
        lines = asyncio.run(measure(args, f"http://{HOST}:{args.port}"))
    finally:
        server.terminate()
        server.wait()
    print(json.dumps(vars(args)))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
