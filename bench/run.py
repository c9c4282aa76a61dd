"""Benchmark of Inkwell's API over HTTP: reads with batched vs unbatched DataLoaders, and writes.

Method
------
1. Database: a PostgreSQL database is created if missing (asyncpg, via the ``postgres``
   database); SQLite files need nothing. Unless ``--skip-seed``, ``server.py migrate`` and
   ``server.py seed --replace`` load deterministic data: N users, 10 posts per user, 5 comments
   per post, 50 tags, 3 tags per post.
2. Writers (only when W4 or W5 is selected): one virtual client per connection, each an active
   member of its own, signed in once with ``login`` before any measurement (Argon2 makes a
   sign-in cost ~50-100 ms, far more than a write). Every server of a run shares one
   ``JWT_SECRET``, generated per run, so the tokens work on all of them.
3. SQL statements per request: for each mode, a server with ``SQL_STATS=true`` answers 10
   sequential requests per workload; the mean of ``extensions.sql.statements`` is reported.
   Each response is checked (reads: no ``errors``, expected counts, and the two modes must
   return the same ``data``; writes: a ``PostPayload`` and ``extensions.transaction`` =
   ``committed``). Writes run in the batched mode only: a mutation loads one key per
   DataLoader, so there is nothing for batching to change.
4. Throughput: for each workload, fresh uvicorn servers, one per mode
   (``ENVIRONMENT=production``, ``SQL_STATS=false``, ``DATALOADER_BATCHING`` true/false), pinned
   to CPU 0; fresh, because a server that has just served W2 holds ~400 MB and is slower for a
   while. A separate process pinned to CPU 1 runs a closed loop on ``--concurrency`` keep-alive
   HTTP/1.1 connections: each connection sends its next request as soon as the previous answer
   arrives. PostgreSQL is not pinned. The client is a minimal asyncio raw-socket HTTP/1.1
   client (on uvloop when installed): on the 2-core box httpx.AsyncClient topped out at
   ~400-600 req/s on GET /healthz and got ~20 % less W3 throughput out of the same server,
   while the raw client does > 14,000 req/s (README.md).
5. Each run: ``--warmup`` seconds (discarded), then ``--duration`` seconds measured; then no
   new requests, and the requests in flight are awaited (each request is bounded by
   ``--request-timeout``), and the server is left to go idle before the next run. Workloads
   run in order; for each, batched then unbatched, so the two sit side by side in time.
6. req/s = successful responses completed in the measured window / duration. When fewer than
   4 x concurrency responses complete in the window (a slow workload: the count is quantised),
   the responses completed after the warm-up, in-flight ones included, are used instead, and
   req/s comes from Little's law for a closed loop: concurrency x successes / sum of latencies
   (marked ``*``). Latency percentiles are nearest-rank over the same responses. An error is
   a non-200 status, a socket error or a request timeout; for reads a body containing
   ``"errors"``, for writes any answer but a committed ``PostPayload`` (a ``VersionConflict``
   included).

Run ``python bench/run.py --help`` for the flags; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
    "W4": "mutation W4($i: CreatePostInput!) { createPost(input: $i) { __typename "
    "... on PostPayload { post { id version } } ... on MutationError { message } } }",
    "W5": "mutation W5($i: UpdatePostInput!) { updatePost(input: $i) { __typename "
    "... on PostPayload { post { version } } ... on VersionConflict { currentVersion } "
    "... on MutationError { message } } }",
}
#: The mutation field each write workload calls.
WRITES = {"W4": "createPost", "W5": "updatePost"}
#: The one mode writes run in (see the module docstring, step 3).
WRITE_MODE = "batched"
LOGIN = (
    "mutation Login($i: LoginInput!) { login(input: $i) { __typename "
    "... on AuthPayload { token } ... on MutationError { message } } }"
)
#: The seed's password for every account (``db.seed.DEMO_PASSWORD``).
DEMO_PASSWORD = "inkwell-demo"
#: Writers are never among the users W1 and W2 read (the first 50 by id): W5 retitles the
#: writers' posts, which would make W2's data differ between the batched and unbatched runs.
READ_USERS = 50
#: W5 edits each writer's first posts by id (the seeded ones: 10 per user).
POSTS_PER_WRITER = 10
#: Each W4 post gets two of the seeded tags and one of these, which the first post to use it
#: creates (so the tag INSERT meets both new and existing names, then existing ones only).
NEW_TAGS = ("bench-a", "bench-b", "bench-c", "bench-d")
W4_CONTENT = (
    "A post written by the benchmark. It is about as long as a short paragraph, so the "
    "INSERT carries a realistic row rather than an empty one. " * 4
)
#: One key per benchmark run, shared by every server it starts: production refuses to start
#: without one, and a token signed in on one server must work on the others.
JWT_SECRET = secrets.token_urlsafe(48)
STATS_REQUESTS = 10
RNG_SEED = 42
SERVER_CPU, LOAD_CPU = 0, 1
#: A response record from the load process: (completion time, latency in ms, failure), where
#: failure is "" for a success, else what went wrong ("timeout", "HTTP 500", "VersionConflict").
Record = tuple[float, float, str]


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
    """What the report and the workloads need to know about the data, read before any write
    workload ran: row counts, the published posts' ids (W3's choice: an anonymous reader
    gets null for a draft, which would be a cheaper and wrong request) and the tag names
    other than ``NEW_TAGS`` (W4's choice, so a post never names one tag twice, which is a
    ``ValidationError``, even when an earlier run created them)."""

    version: str
    rows: dict[str, int]
    post_ids: list[int]
    tag_names: list[str]


async def database_facts(url: str) -> DatabaseFacts:
    """Server version, row counts, published post ids and tag names, read with SQLAlchemy."""
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
            published = "SELECT id FROM posts WHERE status = 'published' ORDER BY id"
            post_ids = list((await conn.scalars(text(published))).all())
            tags = list((await conn.scalars(text("SELECT name FROM tags ORDER BY id"))).all())
    finally:
        await engine.dispose()
    return DatabaseFacts(version, rows, post_ids, [t for t in tags if t not in NEW_TAGS])


async def read_rows(url: str, sql: str, **params: Any) -> list[Any]:
    """The rows of one SQL query (``:name`` parameters; a list value expands to a list of
    parameters, for ``IN :name``), on a short-lived engine."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.ext.asyncio import create_async_engine

    statement = text(sql).bindparams(
        *(bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list))
    )
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement, params)).all())
    finally:
        await engine.dispose()


@dataclass
class Writer:
    """A signed-in virtual client of the write workloads, one per connection.

    ``posts`` maps the post ids W5 edits (the writer's own, so no two clients ever race for
    a row) to the version last seen; it is read from the database before each W5 run, then
    kept up to date from the payloads by ``WriteClient``.
    """

    user_id: int
    email: str
    token: str
    posts: dict[int, int] = field(default_factory=dict)


def writer_accounts(url: str, count: int) -> list[tuple[int, str]]:
    """(id, email) of ``count`` active members with posts, highest ids first (so never one
    of the ``READ_USERS`` that W1 and W2 read). Exits if there are not enough."""
    found = asyncio.run(
        read_rows(
            url,
            "SELECT id, email FROM users WHERE role = 'member' AND is_active AND id > :skip "
            "AND EXISTS (SELECT 1 FROM posts WHERE posts.author_id = users.id) "
            "ORDER BY id DESC LIMIT :count",
            skip=READ_USERS,
            count=count,
        )
    )
    if len(found) < count:
        raise SystemExit(
            f"W4/W5 need {count} active members with posts beyond user {READ_USERS} (one per "
            f"connection); the database has {len(found)}: seed more --users"
        )
    return [(row[0], row[1]) for row in found]


def with_posts(url: str, writers: list[Writer]) -> list[Writer]:
    """``writers`` with ``posts`` set to each one's first ``POSTS_PER_WRITER`` posts and their
    current versions (earlier runs have moved them on)."""
    rows = asyncio.run(
        read_rows(
            url,
            "SELECT author_id, id, version FROM posts WHERE author_id IN :authors ORDER BY id",
            authors=[w.user_id for w in writers],
        )
    )
    posts: dict[int, dict[int, int]] = {w.user_id: {} for w in writers}
    for author_id, post_id, version in rows:
        if len(posts[author_id]) < POSTS_PER_WRITER:
            posts[author_id][post_id] = version
    return [replace(w, posts=posts[w.user_id]) for w in writers]


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
        "JWT_SECRET": JWT_SECRET,
        # The tokens signed in once before the measurements outlive the whole run (access
        # tokens last 15 minutes by default).
        "JWT_TTL_SECONDS": str(24 * 3600),
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


def global_id(type_name: str, pk: int) -> str:
    """The Relay global ID the server gives row ``pk`` of ``type_name``."""
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def graphql_body(workload: str, variables: dict[str, Any] | None = None) -> bytes:
    """The JSON body of one request of ``workload``."""
    body: dict[str, Any] = {"query": QUERIES[workload], "operationName": workload}
    if variables is not None:
        body["variables"] = variables
    return json.dumps(body, separators=(",", ":")).encode()


def post_graphql(
    port: int, body: bytes, timeout: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST ``body`` to /graphql and return the decoded JSON (raises on a non-200 status)."""
    request = urllib.request.Request(
        f"http://{HOST}:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class Client:
    """One connection's requests of a workload, and the judgement of their answers.

    The same object serves the sequential statement count (``body``, ``headers``, ``check``
    on the decoded answer) and the load loop (``request``: raw HTTP/1.1 bytes; ``failure``:
    a cheap verdict on the raw answer). Each answer belongs to the last ``body`` built.
    """

    workload: str
    headers: dict[str, str]

    def body(self) -> bytes:
        """The JSON body of the next request."""
        raise NotImplementedError

    def check(self, doc: dict[str, Any]) -> list[str]:
        """Problems with the decoded answer to the last request (none: a success)."""
        raise NotImplementedError

    def failure(self, status: int, body: bytes) -> str:
        """What went wrong with a raw answer in the load loop ("" for a success)."""
        if status != 200:
            return f"HTTP {status}"
        try:
            problems = self.check(json.loads(body))
        except ValueError:
            return "malformed JSON"
        return problems[0].split(":", 1)[0] if problems else ""

    def request(self, port: int) -> bytes:
        """The next request as HTTP/1.1 bytes, for the raw-socket load client."""
        body = self.body()
        lines = [
            "POST /graphql HTTP/1.1",
            f"Host: {HOST}:{port}",
            "Content-Type: application/json",
            *(f"{name}: {value}" for name, value in self.headers.items()),
            f"Content-Length: {len(body)}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ReadClient(Client):
    """W1-W3, anonymous. W3 asks for a post drawn from ``rng``; the load loop passes every
    connection of a run the same ``rng``, so the run's sequence of post ids is the seeded one.
    """

    def __init__(
        self, workload: str, post_ids: list[int], rng: random.Random, users: int = 0
    ) -> None:
        self.workload, self.post_ids, self.rng, self.users = workload, post_ids, rng, users
        self.headers: dict[str, str] = {}
        self.post_id = 0

    def body(self) -> bytes:
        self.post_id = self.rng.choice(self.post_ids)  # W1 and W2 ignore it
        variables = {"id": str(self.post_id)} if self.workload == "W3" else None
        return graphql_body(self.workload, variables)

    def failure(self, status: int, body: bytes) -> str:
        # The load loop only needs the verdict, and decoding a W2 answer (~400 KB) would cost
        # the load process more CPU than the rest of the request.
        if status != 200:
            return f"HTTP {status}"
        return "GraphQL errors" if b'"errors"' in body else ""

    def check(self, doc: dict[str, Any]) -> list[str]:
        """Errors, and the counts the workload must return (``users``: the seeded count)."""
        if doc.get("errors"):
            return [f"GraphQL errors: {json.dumps(doc['errors'])[:300]}"]
        data = doc.get("data") or {}
        if self.workload == "W3":
            post, wanted = data.get("post"), (global_id("Post", self.post_id), str(self.post_id))
            if not post or post.get("id") not in wanted:
                return [f"post {self.post_id}: got {json.dumps(post)[:200]}"]
            return []
        edges = (data.get("users") or {}).get("edges") or []
        expected = min(READ_USERS, self.users)
        problems = [] if len(edges) == expected else [f"{len(edges)} users, not {expected}"]
        if self.workload == "W2":
            for user in edges:
                posts = user["node"]["posts"]["edges"]
                if len(posts) > 10:
                    problems.append(f"{user['node']['name']}: {len(posts)} posts > 10")
                if any(len(p["node"]["comments"]["edges"]) > 5 for p in posts):
                    problems.append(f"{user['node']['name']}: a post with > 5 comments")
        return problems


class WriteClient(Client):
    """W4 and W5 as one ``writer``, with its bearer token; ``index`` (the connection's)
    seeds the RNG that picks W4's tags, so every run sends the same tags.

    W4 creates a published post with two seeded tags (of ``tag_names``) and one of
    ``NEW_TAGS``. W5 retitles the writer's posts in turn. Every title is new: it carries a
    random label of this client and a count, because setting a title a post already has (say,
    from the statement count before the run) is no change for the ORM: no UPDATE, no new
    version, and a cheaper request than the workload means to measure.
    ``expectedVersion`` is the version the last answer about that post reported (a
    ``PostPayload``'s, or a ``VersionConflict``'s ``currentVersion``), so a conflict counts as
    one error and the next edit of that post goes through again. After a lost answer (a
    timeout) the version is unknown; the next edit of that post then conflicts, and resyncs.
    """

    def __init__(self, workload: str, writer: Writer, index: int, tag_names: list[str]) -> None:
        self.workload, self.writer = workload, writer
        self.seeded_tags = tag_names
        self.headers = {"Authorization": f"Bearer {writer.token}"}
        self.rng = random.Random(RNG_SEED + index)
        self.posts = itertools.cycle(sorted(writer.posts))
        self.label, self.sent = f"{index}.{secrets.token_hex(4)}", 0
        self.post_id: int | None = None  # W5: the post of the last request

    def body(self) -> bytes:
        self.sent += 1
        label = f"{self.label}.{self.sent}"
        if self.workload == "W4":
            seeded = self.rng.sample(self.seeded_tags, min(2, len(self.seeded_tags)))
            i: dict[str, Any] = {
                "title": f"Bench post {label}",
                "content": W4_CONTENT,
                "tagNames": [*seeded, self.rng.choice(NEW_TAGS)],
                "publish": True,
            }
        else:
            self.post_id = next(self.posts)
            i = {
                "id": global_id("Post", self.post_id),
                "expectedVersion": self.writer.posts[self.post_id],
                "title": f"Bench edit {label}",
            }
        return graphql_body(self.workload, {"i": i})

    def check(self, doc: dict[str, Any]) -> list[str]:
        """A committed ``PostPayload``, or the problem, named first by its kind (the
        ``__typename`` of a typed error). W5 records the post's version either way."""
        if doc.get("errors"):
            return [f"GraphQL errors: {json.dumps(doc['errors'])[:300]}"]
        result = (doc.get("data") or {}).get(WRITES[self.workload]) or {}
        kind = result.get("__typename")
        if self.workload == "W5" and self.post_id is not None:
            version = (result.get("post") or {}).get("version", result.get("currentVersion"))
            if isinstance(version, int):
                self.writer.posts[self.post_id] = version
        if kind != "PostPayload":
            return [f"{kind}: {result.get('message') or json.dumps(result)[:200]}"]
        outcome = (doc.get("extensions") or {}).get("transaction")
        return [] if outcome == "committed" else [f"transaction {outcome}: not committed"]


def sign_in(port: int, email: str, timeout: float) -> str:
    """A bearer token for ``email`` (the seed's password), from the ``login`` mutation."""
    body = {"query": LOGIN, "variables": {"i": {"email": email, "password": DEMO_PASSWORD}}}
    doc = post_graphql(port, json.dumps(body).encode(), timeout)
    payload = (doc.get("data") or {}).get("login") or {}
    if payload.get("__typename") != "AuthPayload":
        raise RuntimeError(f"login as {email} failed: {json.dumps(doc)[:300]}")
    return str(payload["token"])


@dataclass
class Statements:
    """SQL statements per request of one workload in one mode, and what the checks found."""

    mean: float
    data: list[Any]
    problems: list[str] = field(default_factory=list)


def measure_statements(port: int, client: Client, timeout: float) -> Statements:
    """Mean ``extensions.sql.statements`` over sequential requests, with every response checked."""
    counts, data, problems = [], [], []
    for _ in range(STATS_REQUESTS):
        try:
            doc = post_graphql(port, client.body(), timeout, client.headers)
        except (OSError, ValueError) as exc:
            problems.append(f"request failed: {exc!r}")
            continue
        problems += client.check(doc)
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
    #: Write workloads: one writer per connection, and the seeded tag names W4 draws from.
    writers: list[Writer] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)


class HealthzClient(Client):
    """GET /healthz: what the HTTP layer alone allows (the report's "HTTP ceiling")."""

    def request(self, port: int) -> bytes:
        return f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    def failure(self, status: int, body: bytes) -> str:
        return "" if status == 200 else f"HTTP {status}"


def make_clients(spec: LoadSpec) -> list[Client]:
    """One client per connection."""
    if spec.workload is None:
        return [HealthzClient() for _ in range(spec.concurrency)]
    if spec.workload in WRITES:
        return [
            WriteClient(spec.workload, writer, index, spec.tag_names)
            for index, writer in enumerate(spec.writers[: spec.concurrency])
        ]
    rng = random.Random(RNG_SEED)  # shared: see ReadClient
    return [ReadClient(spec.workload, spec.post_ids, rng) for _ in range(spec.concurrency)]


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
    client: Client,
    measure_from: float,
    stop_at: float,
    records: list[Record],
) -> None:
    """One keep-alive connection: request, await the answer, repeat until ``stop_at``."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while time.perf_counter() < stop_at:
            request, started = client.request(spec.port), time.perf_counter()
            keep = False
            try:
                async with asyncio.timeout(spec.request_timeout):
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(HOST, spec.port)
                    writer.write(request)
                    status, body, keep = await read_response(reader)
                failure = client.failure(status, body)
            except TimeoutError:
                failure = "timeout"
            except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError):
                failure = "socket error"  # or a malformed response
            done = time.perf_counter()
            if done >= measure_from:
                records.append((done, (done - started) * 1000.0, failure))
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def closed_loop(spec: LoadSpec) -> tuple[float, float, list[Record]]:
    """Run ``spec``; returns (window start, window end, records completed after warm-up)."""
    clients = make_clients(spec)
    start = time.perf_counter()
    measure_from, stop_at = start + spec.warmup, start + spec.warmup + spec.duration
    records: list[Record] = []
    loops = [connection_loop(spec, client, measure_from, stop_at, records) for client in clients]
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
    failures: Counter[str] = field(default_factory=Counter)  # the errors, by kind
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
    """req/s, latency percentiles and errors (see the module docstring, step 6)."""
    window = [r for r in records if r[0] <= stop_at]
    little = len(window) < 4 * concurrency
    chosen = records if little else window
    failures = Counter(r[2] for r in chosen if r[2])
    ok = len(chosen) - failures.total()
    latencies = sorted(r[1] for r in chosen)
    if little:
        rps = concurrency * ok / (sum(latencies) / 1000.0) if latencies else 0.0
    else:
        rps = ok / (stop_at - measure_from)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return LoadResult(
        rps, p50, p99, len(chosen) - ok, len(chosen), little=little, failures=failures
    )


# --- report -----------------------------------------------------------------------------------
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


def modes_of(args: argparse.Namespace, workload: str) -> list[str]:
    """The modes ``workload`` runs in: reads every selected mode, writes ``WRITE_MODE`` only."""
    return [WRITE_MODE] if workload in WRITES else list(args.modes)


def report(
    args: argparse.Namespace,
    facts: DatabaseFacts,
    writers: list[Writer],
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
        "# Inkwell API: reads (batched vs unbatched DataLoaders) and writes",
        "",
        f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        f"- started: {started:%Y-%m-%d %H:%M:%S} UTC",
        f"- versions: {versions(facts.version)}",
        f"- data at the start: {rows['users']} users, {rows['posts']} posts, "
        f"{rows['comments']} comments, {rows['tags']} tags, {rows['post_tags']} post tags "
        f"({origin})",
        f"- load: closed loop, {args.concurrency} keep-alive HTTP/1.1 connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per run, request timeout "
        f"{args.request_timeout:g} s; server on CPU {SERVER_CPU}, load generator on CPU "
        f"{LOAD_CPU}{unpinned}",
    ]
    if writers:
        ids = sorted(w.user_id for w in writers)
        lines.append(
            f"- writers: {len(writers)} active members (user ids {ids[0]}-{ids[-1]}), one per "
            f"connection, each signed in once before the runs; W4 posts carry 2 seeded tags and "
            f"1 of {', '.join(NEW_TAGS)}; W5 retitles each writer's first {POSTS_PER_WRITER} "
            f"posts in turn; writes run {WRITE_MODE} only"
        )
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
        for mode in modes_of(args, workload):
            r, s = results[workload, mode], statements[workload, mode]
            rps = number(r.rps) + ("*" if r.little else "")
            lines.append(
                f"| {workload} | {mode} | {number(s.mean)} | {rps} | {number(r.p50)} "
                f"| {number(r.p99)} | {r.errors} |"
            )
    lines.append("")
    if set(MODES) <= set(args.modes):
        for workload in (w for w in args.workloads if w not in WRITES):
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
    failed = [
        f"{w} {m}: " + ", ".join(f"{n} {kind}" for kind, n in r.failures.most_common())
        for (w, m), r in results.items()
        if r.failures
    ]
    if failed:
        lines.append(f"- errors by kind: {'; '.join(failed)}")
    busy = [f"{w} {m}" for (w, m), r in results.items() if not r.idle]
    if busy:
        lines.append(f"- warning: the server was still busy after {', '.join(busy)}.")
    problems = [f"{w} {m}: {p}" for (w, m), s in statements.items() for p in s.problems]
    checks = "; ".join(problems) or "every checked response ok" + (
        "; batched and unbatched data equal" if set(MODES) <= set(args.modes) else ""
    )
    lines.append(f"- checks: {checks}")
    return "\n".join(lines) + "\n"


def sign_in_writers(args: argparse.Namespace, log_dir: Path) -> list[Writer]:
    """Step 2 of the method: one writer per connection, signed in on a server of its own."""
    accounts = writer_accounts(args.database_url, args.concurrency)
    server = start_server("sign-in", args.database_url, WRITE_MODE, False, log_dir)
    with running([server]):
        log(f"signing in {len(accounts)} writers …")
        return [
            Writer(user_id, email, sign_in(server.port, email, args.request_timeout))
            for user_id, email in accounts
        ]


def make_client(
    args: argparse.Namespace, facts: DatabaseFacts, writers: list[Writer], workload: str
) -> Client:
    """The statement count's client for ``workload``: reads from the seeded RNG (the same post
    ids in both modes), writes as the first writer, with its posts' current versions."""
    if workload in WRITES:
        writer = with_posts(args.database_url, writers[:1])[0]
        return WriteClient(workload, writer, 0, facts.tag_names)
    rng = random.Random(RNG_SEED)
    return ReadClient(workload, facts.post_ids, rng, facts.rows["users"])


def count_statements(
    args: argparse.Namespace,
    facts: DatabaseFacts,
    writers: list[Writer],
    mode: str,
    log_dir: Path,
) -> dict[str, Statements]:
    """Step 3 of the method for one mode, on its own SQL_STATS server."""
    server = start_server(f"{mode}-sql-stats", args.database_url, mode, True, log_dir)
    with running([server]):
        found = {}
        for workload in (w for w in args.workloads if mode in modes_of(args, w)):
            log(f"SQL statements: {workload} {mode} …")
            client = make_client(args, facts, writers, workload)
            found[workload] = measure_statements(server.port, client, args.request_timeout)
        return found


def measure_ceiling(args: argparse.Namespace, log_dir: Path) -> LoadResult:
    """GET /healthz through the same client and server setup: what the HTTP layer allows."""
    server = start_server("healthz", args.database_url, "batched", False, log_dir)
    with running([server]):
        return run_load(LoadSpec(server.port, None, [], args.concurrency, 1.0, 2.0, 5.0))


def measure_load(
    args: argparse.Namespace,
    facts: DatabaseFacts,
    writers: list[Writer],
    workload: str,
    log_dir: Path,
) -> dict[str, LoadResult]:
    """Steps 4-5 of the method for one workload: fresh servers, one run per mode, in order."""
    modes = modes_of(args, workload)
    servers: list[Server] = []
    results = {}
    with running(servers):
        for mode in modes:  # one by one, so a failed start still stops the others
            name = f"{workload}-{mode}"
            servers.append(start_server(name, args.database_url, mode, False, log_dir))
        timing = (args.concurrency, args.warmup, args.duration, args.request_timeout)
        for mode, server in zip(modes, servers, strict=True):
            if workload == "W5":  # earlier runs moved the versions on: start from the stored ones
                writers = with_posts(args.database_url, writers)
            log(f"load: {workload} {mode} …")
            spec = LoadSpec(
                server.port, workload, facts.post_ids, *timing, writers, facts.tag_names
            )
            result = run_load(spec)
            result.idle = wait_idle(server.process.pid, args.request_timeout + 30)
            results[mode] = result
            log(
                f"  {number(result.rps)} req/s, p50 {number(result.p50)} ms, {result.errors} errors"
            )
    return results


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark reads (batched vs unbatched DataLoaders) and writes.",
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
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5", type=lambda s: s.split(","))
    parser.add_argument(
        "--modes",
        default="batched,unbatched",
        type=lambda s: s.split(","),
        help=f"reads run in each; writes (W4, W5) in {WRITE_MODE} only",
    )
    parser.add_argument("--out", type=Path, help="default: bench/results/<UTC timestamp>.md")
    args = parser.parse_args(argv)
    for name, allowed in (("workloads", QUERIES), ("modes", MODES)):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error(f"--{name}: unknown {sorted(unknown)}; choose from {sorted(allowed)}")
    if set(args.workloads) & set(WRITES) and WRITE_MODE not in args.modes:
        parser.error(f"W4 and W5 run in the {WRITE_MODE} mode only: add it to --modes")
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
        raise SystemExit("the database has no published posts: seed it (drop --skip-seed)")
    writers = sign_in_writers(args, log_dir) if set(args.workloads) & set(WRITES) else []

    statements = {
        (workload, mode): stats
        for mode in args.modes
        for workload, stats in count_statements(args, facts, writers, mode, log_dir).items()
    }
    if set(MODES) <= set(args.modes):
        for workload in (w for w in args.workloads if w not in WRITES):
            if statements[workload, "batched"].data != statements[workload, "unbatched"].data:
                statements[workload, "unbatched"].problems.append("data differs from batched")

    ceiling = measure_ceiling(args, log_dir)
    results = {
        (workload, mode): result
        for workload in args.workloads
        for mode, result in measure_load(args, facts, writers, workload, log_dir).items()
    }

    text = report(args, facts, writers, ceiling, statements, results, started)
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
