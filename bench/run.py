"""Benchmark of Inkwell's read API: batched vs unbatched DataLoaders, over HTTP.

Method
------
1. Database: a PostgreSQL database is created if missing (asyncpg, via the ``postgres``
   database); SQLite files need nothing. Unless ``--skip-seed``, ``server.py migrate`` and
   ``server.py seed --replace`` load deterministic data: N users, 10 posts per user, 5 comments
   per post, 50 tags, 3 tags per post.
2. SQL statements per request: for each mode, a server with ``SQL_STATS=true`` answers 10
   sequential requests per workload; the mean of ``extensions.sql.statements`` is reported.
   Each response is checked (no ``errors``, expected counts), and the two modes must return
   the same ``data``.
3. Throughput: for each workload, fresh uvicorn servers, one per mode
   (``ENVIRONMENT=production``, ``SQL_STATS=false``, ``DATALOADER_BATCHING`` true/false), pinned
   to CPU 0; fresh, because a server that has just served W2 holds ~400 MB and is slower for a
   while. A separate process pinned to CPU 1 runs a closed loop on ``--concurrency`` keep-alive
   HTTP/1.1 connections: each connection sends its next request as soon as the previous answer
   arrives. PostgreSQL is not pinned. The client is a minimal asyncio raw-socket HTTP/1.1
   client (on uvloop when installed): on the 2-core box httpx.AsyncClient topped out at
   ~400-600 req/s on GET /healthz and got ~20 % less W3 throughput out of the same server,
   while the raw client does > 14,000 req/s (README.md).
4. Each run: ``--warmup`` seconds (discarded), then ``--duration`` seconds measured; then no
   new requests, and the requests in flight are awaited (each request is bounded by
   ``--request-timeout``), and the server is left to go idle before the next run. Workloads
   run in order; for each, batched then unbatched, so the two sit side by side in time.
5. req/s = successful responses completed in the measured window / duration. When fewer than
   4 x concurrency responses complete in the window (a slow workload: the count is quantised),
   the responses completed after the warm-up, in-flight ones included, are used instead, and
   req/s comes from Little's law for a closed loop: concurrency x successes / sum of latencies
   (marked ``*``). Latency percentiles are nearest-rank over the same responses. An error is
   a non-200 status, a body containing ``"errors"``, a socket error or a request timeout.

Run ``python bench/run.py --help`` for the flags; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import multiprocessing
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/inkwell_bench"
SEED = {"posts-per-user": 10, "comments-per-post": 5, "tags": 50, "tags-per-post": 3}
MODES = {"batched": "true", "unbatched": "false"}
QUERIES = {
    "W1": "query W1 { users(first: 50) { edges { node { id name email } } } }",
    "W2": "query W2 { users(first: 50) { edges { node { name posts(first: 10) { edges { node "
    "{ title tags { name } comments(first: 5) { edges { node { body author { name } } } } } } } "
    "} } } }",
    "W3": "query W3($id: ID!) { post(id: $id) { id title author { name } tags { name } } }",
}
STATS_REQUESTS = 10
RNG_SEED = 42
SERVER_CPU, LOAD_CPU = 0, 1
#: A response record from the load process: (completion time, latency in ms, ok).
Record = tuple[float, float, bool]


# --- database ---------------------------------------------------------------------------------


async def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist (SQLite: no-op)."""
    if not url.startswith("postgresql"):
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host or HOST,
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database="postgres",
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", u.database):
            await conn.execute('CREATE DATABASE "{}"'.format(u.database.replace('"', '""')))
            log(f"created database {u.database}")
    finally:
        await conn.close()


def seed_database(url: str, users: int) -> None:
    """Migrate, then replace the data with the benchmark's seed, using the project's CLI."""
    env = {**os.environ, "DATABASE_URL": url}
    sizes = [f"--{k}={v}" for k, v in SEED.items()]
    for args in (["migrate"], ["seed", "--replace", f"--users={users}", *sizes]):
        command = [sys.executable, "server.py", *args]  # its output goes to stderr, like ours
        subprocess.run(command, cwd=ROOT, env=env, stdout=sys.stderr, check=True)


@dataclass
class DatabaseFacts:
    """What the report and the workloads need to know about the data."""

    version: str
    rows: dict[str, int]
    post_ids: list[int]


async def database_facts(url: str) -> DatabaseFacts:
    """Server version, row counts and every post id, read with SQLAlchemy (any dialect)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if url.startswith("sqlite"):
                version = "SQLite " + await conn.scalar(text("SELECT sqlite_version()"))
            else:
                version = "PostgreSQL " + await conn.scalar(text("SHOW server_version"))
            rows = {
                table: await conn.scalar(text(f"SELECT count(*) FROM {table}"))
                for table in ("users", "posts", "comments", "tags", "post_tags")
            }
            post_ids = list((await conn.scalars(text("SELECT id FROM posts ORDER BY id"))).all())
    finally:
        await engine.dispose()
    return DatabaseFacts(version, rows, post_ids)


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A uvicorn process serving ``server:app`` on ``port``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    """``taskset -c cpu`` when taskset exists and the CPU is usable, else nothing."""
    usable = cpu in os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else False
    return ["taskset", "-c", str(cpu)] if usable and shutil.which("taskset") else []


def start_server(name: str, url: str, mode: str, sql_stats: bool, log_dir: Path) -> Server:
    """Start uvicorn for ``mode`` and wait until /healthz answers (30 s at most)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATALOADER_BATCHING": MODES[mode],
        "GRAPHIQL": "false",
        "ENVIRONMENT": "development" if sql_stats else "production",
        "SQL_STATS": "true" if sql_stats else "false",
    }
    port = free_port()
    options = f"--host {HOST} --port {port} --no-access-log --log-level warning".split()
    command = [*pin(SERVER_CPU), sys.executable, "-m", "uvicorn", "server:app", *options]
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not answer /healthz within 30 s:\n{server.log_tail()}")


@contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server in ``servers`` on exit, however the block ends."""
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def cpu_ticks(pid: int) -> int | None:
    """User + system CPU ticks of ``pid`` (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def wait_idle(pid: int, limit: float) -> bool:
    """Wait until ``pid`` uses at most 1 CPU tick per 200 ms (requests abandoned by the load
    generator finish first), for ``limit`` seconds at most. False if it never went idle."""
    deadline = time.monotonic() + limit
    before = cpu_ticks(pid)
    while before is not None and time.monotonic() < deadline:
        time.sleep(0.2)
        after = cpu_ticks(pid)
        if after is None or after - before <= 1:
            return True
        before = after
    return before is None


# --- requests and checks ----------------------------------------------------------------------


def request_body(workload: str, post_id: int) -> bytes:
    """The JSON body of a workload's request; W3 asks for ``post_id``."""
    body: dict[str, Any] = {"query": QUERIES[workload], "operationName": workload}
    if workload == "W3":
        body["variables"] = {"id": str(post_id)}
    return json.dumps(body, separators=(",", ":")).encode()


def post_graphql(port: int, body: bytes, timeout: float) -> dict[str, Any]:
    """POST ``body`` to /graphql and return the decoded JSON (raises on a non-200 status)."""
    request = urllib.request.Request(
        f"http://{HOST}:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def check_response(workload: str, doc: dict[str, Any], post_id: int, users: int) -> list[str]:
    """Problems with one response: errors, and counts the workload must return."""
    if doc.get("errors"):
        return [f"errors: {json.dumps(doc['errors'])[:300]}"]
    data = doc.get("data") or {}
    if workload == "W3":
        post = data.get("post")
        global_id = base64.b64encode(f"Post:{post_id}".encode()).decode()
        if not post or post.get("id") not in (global_id, str(post_id)):
            return [f"post {post_id}: got {json.dumps(post)[:200]}"]
        return []
    edges = (data.get("users") or {}).get("edges") or []
    problems = [] if len(edges) == min(50, users) else [f"{len(edges)} users, not {min(50, users)}"]
    if workload == "W2":
        for user in edges:
            posts = user["node"]["posts"]["edges"]
            if len(posts) > 10:
                problems.append(f"{user['node']['name']}: {len(posts)} posts > 10")
            if any(len(p["node"]["comments"]["edges"]) > 5 for p in posts):
                problems.append(f"{user['node']['name']}: a post with > 5 comments")
    return problems


@dataclass
class Statements:
    """SQL statements per request of one workload in one mode, and what the checks found."""

    mean: float
    data: list[Any]
    problems: list[str] = field(default_factory=list)


def measure_statements(
    port: int, workload: str, post_ids: list[int], users: int, timeout: float
) -> Statements:
    """Mean ``extensions.sql.statements`` over sequential requests, with every response checked."""
    rng = random.Random(RNG_SEED)
    counts, data, problems = [], [], []
    for _ in range(STATS_REQUESTS):
        post_id = rng.choice(post_ids)
        try:
            doc = post_graphql(port, request_body(workload, post_id), timeout)
        except (OSError, ValueError) as exc:
            problems.append(f"request failed: {exc!r}")
            continue
        problems += check_response(workload, doc, post_id, users)
        counts.append(doc.get("extensions", {}).get("sql", {}).get("statements", math.nan))
        data.append(doc.get("data"))
    mean = sum(counts) / len(counts) if counts else math.nan
    return Statements(mean, data, sorted(set(problems)))


# --- load generation (runs in its own process, pinned to LOAD_CPU) ---------------------------


@dataclass(frozen=True)
class LoadSpec:
    """One closed-loop run: where, what, how many connections and for how long."""

    port: int
    workload: str | None  # None: GET /healthz
    post_ids: list[int]
    concurrency: int
    warmup: float
    duration: float
    request_timeout: float


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one HTTP/1.1 response with a Content-Length: (status, body, keep-alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])
    }
    if b"content-length" not in headers:
        raise ValueError("response without Content-Length")
    body = await reader.readexactly(int(headers[b"content-length"]))
    return status, body, headers.get(b"connection", b"").lower() != b"close"


async def connection_loop(
    spec: LoadSpec,
    make_request: Callable[[], bytes],
    measure_from: float,
    stop_at: float,
    records: list[Record],
) -> None:
    """One keep-alive connection: request, await the answer, repeat until ``stop_at``."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while time.perf_counter() < stop_at:
            request, started = make_request(), time.perf_counter()
            keep = False
            try:
                async with asyncio.timeout(spec.request_timeout):
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(HOST, spec.port)
                    writer.write(request)
                    status, body, keep = await read_response(reader)
                ok = status == 200 and b'"errors"' not in body
            except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError):
                ok = False  # socket error, timeout, or a malformed response
            done = time.perf_counter()
            if done >= measure_from:
                records.append((done, (done - started) * 1000.0, ok))
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


def request_maker(spec: LoadSpec) -> Callable[[], bytes]:
    """A function returning the bytes of the next request (W3: a random post, seeded RNG)."""
    workload = spec.workload
    if workload is None:
        healthz = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{spec.port}\r\n\r\n".encode()
        return lambda: healthz
    rng = random.Random(RNG_SEED)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {HOST}:{spec.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    )

    def make_request() -> bytes:
        body = request_body(workload, rng.choice(spec.post_ids))
        return head.format(len(body)).encode() + body

    return make_request


async def closed_loop(spec: LoadSpec) -> tuple[float, float, list[Record]]:
    """Run ``spec``; returns (window start, window end, records completed after warm-up)."""
    make_request = request_maker(spec)
    start = time.perf_counter()
    measure_from, stop_at = start + spec.warmup, start + spec.warmup + spec.duration
    records: list[Record] = []
    loops = [
        connection_loop(spec, make_request, measure_from, stop_at, records)
        for _ in range(spec.concurrency)
    ]
    await asyncio.gather(*loops)
    return measure_from, stop_at, records


def load_process(spec: LoadSpec, pipe: Any) -> None:
    """Entry point of the load process: pin to LOAD_CPU, run, send the result back."""
    if hasattr(os, "sched_setaffinity") and LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CPU})
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        pipe.send(asyncio.run(closed_loop(spec), loop_factory=loop_factory))
    except KeyboardInterrupt:
        pass  # Ctrl-C reaches the whole process group; the parent reports it
    finally:
        pipe.close()


@dataclass
class LoadResult:
    """The numbers reported for one run."""

    rps: float
    p50: float
    p99: float
    errors: int
    responses: int
    little: bool  # req/s from Little's law (too few responses in the window)
    idle: bool = True  # the server went idle after the run


def run_load(spec: LoadSpec) -> LoadResult:
    """Run ``spec`` in a separate process and summarise it."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=load_process, args=(spec, sender), daemon=True)
    process.start()
    sender.close()
    limit = spec.warmup + spec.duration + spec.request_timeout + 30
    try:
        if not receiver.poll(limit):
            raise RuntimeError(f"load process gave no result within {limit:.0f} s")
        try:
            measure_from, stop_at, records = receiver.recv()
        except EOFError:
            raise RuntimeError("the load process died (its traceback is above)") from None
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
    return summarise(records, measure_from, stop_at, spec.concurrency)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100); NaN for no values."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def summarise(
    records: list[Record], measure_from: float, stop_at: float, concurrency: int
) -> LoadResult:
    """req/s, latency percentiles and errors (see the module docstring, step 5)."""
    window = [r for r in records if r[0] <= stop_at]
    little = len(window) < 4 * concurrency
    chosen = records if little else window
    ok = sum(1 for r in chosen if r[2])
    latencies = sorted(r[1] for r in chosen)
    if little:
        rps = concurrency * ok / (sum(latencies) / 1000.0) if latencies else 0.0
    else:
        rps = ok / (stop_at - measure_from)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return LoadResult(rps, p50, p99, errors=len(chosen) - ok, responses=len(chosen), little=little)


# --- report -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def versions(db_version: str) -> str:
    """Interpreter, database and main library versions, for the report."""
    libs = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("strawberry-graphql", "SQLAlchemy", "asyncpg", "uvicorn", "starlette")
    )
    return f"Python {platform.python_version()} ({sys.executable}), {db_version}; {libs}"


def number(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def report(
    args: argparse.Namespace,
    facts: DatabaseFacts,
    ceiling: LoadResult | None,
    statements: dict[tuple[str, str], Statements],
    results: dict[tuple[str, str], LoadResult],
    started: datetime,
) -> str:
    """The markdown report."""
    rows = facts.rows
    seed = " ".join(f"--{k} {v}" for k, v in SEED.items())
    origin = (
        "existing data, --skip-seed" if args.skip_seed else f"seeded: --users {args.users} {seed}"
    )
    unpinned = ", PostgreSQL unpinned" if facts.version.startswith("PostgreSQL") else ""
    lines = [
        "# Inkwell read API: batched vs unbatched DataLoaders",
        "",
        f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        f"- started: {started:%Y-%m-%d %H:%M:%S} UTC",
        f"- versions: {versions(facts.version)}",
        f"- data: {rows['users']} users, {rows['posts']} posts, {rows['comments']} comments, "
        f"{rows['tags']} tags, {rows['post_tags']} post tags ({origin})",
        f"- load: closed loop, {args.concurrency} keep-alive HTTP/1.1 connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per run, request timeout "
        f"{args.request_timeout:g} s; server on CPU {SERVER_CPU}, load generator on CPU "
        f"{LOAD_CPU}{unpinned}",
    ]
    if ceiling is not None:
        lines.append(
            f"- HTTP ceiling: GET /healthz, same client and server setup: "
            f"{number(ceiling.rps, 0)} req/s"
        )
    lines += [
        "",
        "| workload | mode | SQL statements/request | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for workload in args.workloads:
        for mode in args.modes:
            r, s = results[workload, mode], statements[workload, mode]
            rps = number(r.rps) + ("*" if r.little else "")
            lines.append(
                f"| {workload} | {mode} | {number(s.mean)} | {rps} | {number(r.p50)} "
                f"| {number(r.p99)} | {r.errors} |"
            )
    lines.append("")
    if set(MODES) <= set(args.modes):
        for workload in args.workloads:
            batched, unbatched = (results[workload, mode].rps for mode in MODES)
            ratio = (
                f"{batched / unbatched:,.2f}x" if unbatched > 0 else "n/a (no unbatched success)"
            )
            lines.append(f"- {workload}: batched ÷ unbatched req/s = {ratio}")
        lines.append("")
    little = [f"{w} {m}: {r.responses}" for (w, m), r in results.items() if r.little]
    if little:
        lines.append(
            f"\\* Fewer than {4 * args.concurrency} responses in the measured window, so req/s "
            "is Little's law (concurrency x successes / sum of latencies), and latencies and "
            "errors are over every response after the warm-up, in-flight ones included "
            f"({', '.join(little)} responses)."
        )
    busy = [f"{w} {m}" for (w, m), r in results.items() if not r.idle]
    if busy:
        lines.append(f"- warning: the server was still busy after {', '.join(busy)}.")
    problems = [f"{w} {m}: {p}" for (w, m), s in statements.items() for p in s.problems]
    checks = "; ".join(problems) or "every checked response ok; batched and unbatched data equal"
    lines.append(f"- checks: {checks}")
    return "\n".join(lines) + "\n"


def count_statements(
    args: argparse.Namespace, facts: DatabaseFacts, mode: str, log_dir: Path
) -> dict[str, Statements]:
    """Step 2 of the method for one mode, on its own SQL_STATS server."""
    server = start_server(f"{mode}-sql-stats", args.database_url, mode, True, log_dir)
    with running([server]):
        found = {}
        for workload in args.workloads:
            log(f"SQL statements: {workload} {mode} …")
            found[workload] = measure_statements(
                server.port, workload, facts.post_ids, facts.rows["users"], args.request_timeout
            )
        return found


def measure_ceiling(args: argparse.Namespace, log_dir: Path) -> LoadResult:
    """GET /healthz through the same client and server setup: what the HTTP layer allows."""
    server = start_server("healthz", args.database_url, "batched", False, log_dir)
    with running([server]):
        return run_load(LoadSpec(server.port, None, [], args.concurrency, 1.0, 2.0, 5.0))


def measure_load(
    args: argparse.Namespace, facts: DatabaseFacts, workload: str, log_dir: Path
) -> dict[str, LoadResult]:
    """Steps 3-4 of the method for one workload: fresh servers, one run per mode, in order."""
    servers: list[Server] = []
    results = {}
    with running(servers):
        for mode in args.modes:  # one by one, so a failed start still stops the others
            name = f"{workload}-{mode}"
            servers.append(start_server(name, args.database_url, mode, False, log_dir))
        timing = (args.concurrency, args.warmup, args.duration, args.request_timeout)
        for mode, server in zip(args.modes, servers, strict=True):
            log(f"load: {workload} {mode} …")
            result = run_load(LoadSpec(server.port, workload, facts.post_ids, *timing))
            result.idle = wait_idle(server.process.pid, args.request_timeout + 30)
            results[mode] = result
            log(
                f"  {number(result.rps)} req/s, p50 {number(result.p50)} ms, {result.errors} errors"
            )
    return results


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark batched vs unbatched DataLoaders.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help="postgresql+asyncpg://… or sqlite+aiosqlite:///path",
    )
    parser.add_argument("--users", type=int, default=1000, help="seed size: users")
    parser.add_argument("--skip-seed", action="store_true", help="use the data already there")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=120.0,
        help="seconds one request may take (bounds the drain after a run)",
    )
    parser.add_argument("--workloads", default="W1,W2,W3", type=lambda s: s.split(","))
    parser.add_argument("--modes", default="batched,unbatched", type=lambda s: s.split(","))
    parser.add_argument("--out", type=Path, help="default: bench/results/<UTC timestamp>.md")
    args = parser.parse_args(argv)
    for name, allowed in (("workloads", QUERIES), ("modes", MODES)):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error(f"--{name}: unknown {sorted(unknown)}; choose from {sorted(allowed)}")
    if not args.database_url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        parser.error("--database-url must be postgresql+asyncpg://… or sqlite+aiosqlite:///…")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 0, or 1 when a response check failed."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C does, so the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = datetime.now(UTC)
    out = (args.out or ROOT / "bench" / "results" / f"{started:%Y%m%dT%H%M%SZ}.md").resolve()
    log_dir = out.with_suffix(".logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # relative SQLite paths mean the same file here and in the servers

    asyncio.run(ensure_database(args.database_url))
    if not args.skip_seed:
        log(f"seeding {args.users} users …")
        seed_database(args.database_url, args.users)
    facts = asyncio.run(database_facts(args.database_url))
    if not facts.post_ids:
        raise SystemExit("the database has no posts: seed it (drop --skip-seed)")

    statements = {
        (workload, mode): stats
        for mode in args.modes
        for workload, stats in count_statements(args, facts, mode, log_dir).items()
    }
    if set(MODES) <= set(args.modes):
        for workload in args.workloads:
            if statements[workload, "batched"].data != statements[workload, "unbatched"].data:
                statements[workload, "unbatched"].problems.append("data differs from batched")

    ceiling = measure_ceiling(args, log_dir)
    results = {
        (workload, mode): result
        for workload in args.workloads
        for mode, result in measure_load(args, facts, workload, log_dir).items()
    }

    text = report(args, facts, ceiling, statements, results, started)
    out.write_text(text)
    print(text, end="")
    log(f"wrote {out} (server logs: {log_dir})")
    return 1 if any(s.problems for s in statements.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted (the servers have been stopped)")
        sys.exit(130)
