"""Memory soak: does each worker's RSS level off under a long mixed load? (issue 19)

Method
------
1. Database: its own PostgreSQL database (``inkwell_soak``), created if missing and, unless
   ``--skip-seed``, migrated and seeded as ``bench/run.py`` seeds (``--users`` users, 10 posts
   each, 5 comments per post, 50 tags, 3 per post: 1,000 / 10,000 / 50,000 by default). The
   writes change the data (a few thousand posts and comments per half hour), so every run
   reseeds unless told not to.
2. Server: ``server.py serve`` as in production (``ENVIRONMENT=production``, ``WORKERS=2``,
   its default log level, one line per operation to the log file), not pinned. Its workers
   are found as the serve process's children (``/proc``), uvicorn's spawned processes.
3. Load, from this process (one asyncio loop, uvloop when installed), paced, not a closed
   loop: ``--connections`` keep-alive HTTP/1.1 connections (the raw client of
   ``bench/run.py``) together send ``--rate`` requests per second, so every minute carries
   the same work whatever the box's speed. The mix (``SHAPES``): reads of several shapes,
   anonymous or signed in, with variables drawn at random (post, user and tag ids, page
   sizes, search words); documents unique to one request (a literal id and alias in the
   text), automatic persisted queries from a pool larger than the server's APQ store, and
   invalid documents, so that every per-document cache fills to its bound; writes as
   signed-in members (``createPost``, ``updatePost`` with the version each answer reported,
   ``addComment`` on a few followed posts). ``--subscribers`` WebSocket connections
   (graphql-transport-ws) follow ``postPublished``, ``commentAdded`` and ``postUpdated``,
   half anonymous and half signed in, and read every event; one of them is closed and
   opened again every ``--churn`` seconds.
4. Every ``--interval`` seconds each worker's ``VmRSS`` is read from ``/proc/<pid>/status``,
   and a row printed. At the end: the table (one row per sample, one column per worker),
   and per worker the growth from the first sample at or after ``--warmup`` minutes to the
   last one, as a percentage and as a least-squares slope (MB/min) over those samples.
   The verdict is issue 19's: growth at most ``--max-growth`` per cent for every worker.
5. ``--trace``: one worker only, served by this script in a child process under
   ``tracemalloc`` (``--trace-frames`` frames), which writes to the log folder, at every
   sample, the census of the process's caches (``census``: entries and bound) and the
   allocation sites that grew most since the first sample after the warm-up. Slower
   (tracemalloc about doubles the cost of an allocation): for finding what grows, not for
   the curve.

The load costs this process 2-4 % of one core at the default rate (the report's "load
generator CPU" line); the two workers and PostgreSQL serve 40 requests/s well within the
2-core box, which stays usable. Raise ``--rate`` with care.
Exit code: 0 when every worker's growth is within ``--max-growth`` and no worker restarted,
1 otherwise. Run ``python bench/soak.py --help`` for the flags; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import (  # bench/run.py: the same database, seed, sign-in and HTTP helpers
    HOST,
    JWT_SECRET,
    ROOT,
    database_facts,
    ensure_database,
    free_port,
    log,
    read_response,
    read_rows,
    seed_database,
    sign_in,
    versions,
)

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/inkwell_soak"
#: Search terms: prefixes of these words (some in seeded titles, some in none) are
#: ``posts(filter: {search:})`` values, a filtered page compiled per request.
WORDS = (
    "garden river light paper winter music coffee engine stone forest city ocean "
    "history travel design code health market night story"
).split()
#: Members who write (the other members read: tokens for reads and subscriptions, each a
#: viewer the per-process viewer cache and token cache remember).
WRITERS = 8
#: Posts the ``commentAdded`` subscribers follow and ``addComment`` writes to.
FOLLOWED_POSTS = 4
#: Distinct documents sent as automatic persisted queries: more than the APQ store keeps
#: (``PERSISTED_QUERIES_CACHE_SIZE``, 1,000), so its LRU both hits and evicts.
APQ_DOCUMENTS = 3000


# --- the mix ------------------------------------------------------------------------------


@dataclass
class World:
    """What the requests draw from: ids read before the run, the members' tokens, the
    versions of the writers' posts (kept up to date from the answers)."""

    post_ids: list[int]
    user_ids: list[int]
    tag_names: list[str]
    writers: list[tuple[int, str]]  # (user id, token)
    readers: list[str]  # tokens
    own_posts: dict[int, list[int]]  # writer id -> post ids
    versions: dict[int, int]  # post id -> last version seen
    followed: list[int]
    rng: random.Random = field(default_factory=lambda: random.Random(19))
    sent: int = 0


#: A request: (body, bearer token or None, what to do with the decoded answer, or None).
Request = tuple[dict[str, Any], str | None, Callable[[dict[str, Any]], str] | None]


def _gid(kind: str, pk: int) -> str:
    import base64

    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def _reader(w: World) -> str | None:
    """Half the reads anonymous, half signed in as one of the readers."""
    return w.rng.choice(w.readers) if w.rng.random() < 0.5 else None


def users_page(w: World) -> Request:
    q = "query UsersPage($n: Int!) { users(first: $n) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }"  # noqa: E501
    return {"query": q, "variables": {"n": w.rng.randint(1, 50)}}, _reader(w), None


def post(w: World) -> Request:
    q = "query Post($id: ID!) { post(id: $id) { id title author { name } tags { name } } }"
    return {"query": q, "variables": {"id": str(w.rng.choice(w.post_ids))}}, _reader(w), None


def post_deep(w: World) -> Request:
    q = (
        "query PostDeep($id: ID!, $n: Int!) { post(id: $id) { title content author { name "
        "posts(first: $n) { edges { node { title } } } } comments(first: $n) { totalCount "
        "edges { node { body author { name } } } } } }"
    )
    variables = {"id": _gid("Post", w.rng.choice(w.post_ids)), "n": w.rng.randint(1, 10)}
    return {"query": q, "variables": variables}, _reader(w), None


def search(w: World) -> Request:
    q = "query Search($q: String!) { posts(first: 10, filter: {search: $q}) { edges { node { id title } } } }"  # noqa: E501
    word = w.rng.choice(WORDS)[: w.rng.randint(2, 5)]
    return {"query": q, "variables": {"q": word}}, _reader(w), None


def tag(w: World) -> Request:
    q = "query Tag($name: String!) { tag(name: $name) { name posts(first: 5) { edges { node { title } } } } }"  # noqa: E501
    return {"query": q, "variables": {"name": w.rng.choice(w.tag_names)}}, _reader(w), None


def user(w: World) -> Request:
    q = (
        "query User($id: ID!) { user(id: $id) { name posts(first: 5) { totalCount edges { "
        "node { title tags { name } } } } } }"
    )
    return {"query": q, "variables": {"id": str(w.rng.choice(w.user_ids))}}, _reader(w), None


def nodes(w: World) -> Request:
    q = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id ... on Post { title } ... on User { name } } }"  # noqa: E501
    ids = [_gid("Post", w.rng.choice(w.post_ids)) for _ in range(3)]
    ids += [_gid("User", w.rng.choice(w.user_ids)) for _ in range(2)]
    return {"query": q, "variables": {"ids": ids}}, _reader(w), None


def viewer(w: World) -> Request:
    return {"query": "query Me { viewer { id name email } }"}, w.rng.choice(w.readers), None


def unique(w: World) -> Request:
    """A document no other request sends: its own operation name, alias and literal id."""
    n = w.sent
    q = f'query U{n} {{ u{n}: post(id: "{w.rng.choice(w.post_ids)}") {{ id title }} }}'
    return {"query": q}, _reader(w), None


def persisted(w: World) -> Request:
    """An APQ request: the hash alone (answered from the store, or PersistedQueryNotFound),
    else the hash with its document; documents from a pool of ``APQ_DOCUMENTS``."""
    k = w.rng.randrange(APQ_DOCUMENTS)
    q = f"query Apq{k} {{ users(first: {k % 50 + 1}) {{ edges {{ node {{ name }} }} }} }}"
    digest = hashlib.sha256(q.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    if w.rng.random() < 0.5:
        return {"extensions": ext}, _reader(w), None
    return {"query": q, "extensions": ext}, _reader(w), None


def invalid(w: World) -> Request:
    """Hostile or broken input, each text new: an unknown field, a syntax error, too deep."""
    n, kind = w.sent, w.rng.randrange(3)
    if kind == 0:
        q = f'query Bad{n} {{ post(id: "1") {{ nope{n} }} }}'
    elif kind == 1:
        q = f'query Broken{n} {{ post(id: "{n}") {{ title '
    else:  # nested past MAX_QUERY_DEPTH
        opened, closed = "author { posts(first: 1) { edges { node { " * 6, "} } } } " * 6
        q = f'query Deep{n} {{ post(id: "1") {{ {opened} title {closed} }} }}'
    return {"query": q}, _reader(w), None


def create_post(w: World) -> Request:
    _, token = w.rng.choice(w.writers)
    q = (
        "mutation CreatePost($i: CreatePostInput!) { createPost(input: $i) { __typename "
        "... on PostPayload { post { id version } } } }"
    )
    tags = [*w.rng.sample(w.tag_names, 2), f"soak-{w.rng.randrange(20)}"]
    i = {
        "title": f"Soak {w.sent}",
        "content": "A post written by the soak. " * w.rng.randint(1, 20),
        "tagNames": tags,
        "publish": w.rng.random() < 0.8,
    }

    def seen(doc: dict[str, Any]) -> str:
        payload = (doc.get("data") or {}).get("createPost") or {}
        kind = payload.get("__typename")
        return "" if kind == "PostPayload" else f"createPost: {kind}: {json.dumps(doc)[:200]}"

    return {"query": q, "variables": {"i": i}}, token, seen


def update_post(w: World) -> Request:
    author, token = w.rng.choice(w.writers)
    pk = w.rng.choice(w.own_posts[author])
    q = (
        "mutation UpdatePost($i: UpdatePostInput!) { updatePost(input: $i) { __typename "
        "... on PostPayload { post { databaseId version } } "
        "... on VersionConflict { currentVersion } } }"
    )
    i = {"id": str(pk), "expectedVersion": w.versions[pk], "title": f"Soak edit {w.sent}"}

    def seen(doc: dict[str, Any]) -> str:
        payload = (doc.get("data") or {}).get("updatePost") or {}
        if payload.get("__typename") == "PostPayload":
            w.versions[pk] = payload["post"]["version"]
            return ""
        if payload.get("__typename") == "VersionConflict":
            w.versions[pk] = payload["currentVersion"]
            return "VersionConflict"  # two connections edited the same post at once
        return "updatePost refused"

    return {"query": q, "variables": {"i": i}}, token, seen


def add_comment(w: World) -> Request:
    _, token = w.rng.choice(w.writers)
    target = w.rng.choice(w.followed) if w.rng.random() < 0.5 else w.rng.choice(w.post_ids)
    q = (
        "mutation AddComment($i: AddCommentInput!) { addComment(input: $i) { __typename "
        "... on CommentPayload { comment { id } } } }"
    )
    i = {"postId": str(target), "body": f"Soak comment {w.sent}"}

    def seen(doc: dict[str, Any]) -> str:
        payload = (doc.get("data") or {}).get("addComment") or {}
        return "" if payload.get("__typename") == "CommentPayload" else "addComment refused"

    return {"query": q, "variables": {"i": i}}, token, seen


#: Shape -> (weight, how to make one request). Reads 85 %, writes 15 %.
SHAPES: dict[str, tuple[int, Callable[[World], Request]]] = {
    "users_page": (10, users_page),
    "post": (12, post),
    "post_deep": (10, post_deep),
    "search": (8, search),
    "tag": (6, tag),
    "user": (10, user),
    "nodes": (6, nodes),
    "viewer": (5, viewer),
    "unique": (8, unique),
    "persisted": (6, persisted),
    "invalid": (4, invalid),
    "createPost": (4, create_post),
    "updatePost": (5, update_post),
    "addComment": (6, add_comment),
}
#: Shapes whose answers carry errors on purpose.
ERRORS_EXPECTED = {"invalid", "persisted"}


# --- load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load did, by shape: requests answered, failures by kind, events read."""

    answered: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    events: int = 0
    subscriptions: int = 0
    #: The subscribers' open connections, by index (what the churn closes).
    sockets: dict[int, Any] = field(default_factory=dict)


def _http(port: int, body: bytes, token: str | None) -> bytes:
    lines = [
        "POST /graphql HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        *([f"Authorization: Bearer {token}"] if token else []),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def connection(port: int, w: World, tally: Tally, period: float, stop: float) -> None:
    """One keep-alive connection sending a request every ``period`` seconds (no catching
    up after a slow answer: the load stays paced, never a burst)."""
    names = list(SHAPES)
    weights = [SHAPES[n][0] for n in names]
    reader = writer = None
    due = time.monotonic() + w.rng.random() * period
    while due < stop:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        due = max(due + period, time.monotonic())
        name = w.rng.choices(names, weights)[0]
        w.sent += 1
        body, token, seen = SHAPES[name][1](w)
        try:
            async with asyncio.timeout(30):
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(_http(port, json.dumps(body).encode(), token))
                status, raw, keep = await read_response(reader)
        except (TimeoutError, OSError, EOFError, ValueError, asyncio.IncompleteReadError):
            tally.failures[f"{name}: socket error or timeout"] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        if not keep:
            writer.close()
            reader = writer = None
        tally.answered[name] += 1
        if status != 200 and name not in ERRORS_EXPECTED:
            tally.failures[f"{name}: HTTP {status}"] += 1
        elif seen is not None:
            problem = seen(json.loads(raw))
            if problem:
                tally.failures[f"{name}: {problem}"] += 1
        elif b'"errors"' in raw and name not in ERRORS_EXPECTED:
            tally.failures[f"{name}: GraphQL errors"] += 1
    if writer is not None:
        writer.close()


def subscription_for(index: int, w: World) -> tuple[dict[str, Any], str | None]:
    """The ``index``-th subscriber's operation and token: four kinds in turn, every other
    one signed in."""
    token = w.readers[index % len(w.readers)] if index % 2 else None
    kind = index % 4
    if kind in (0, 1):
        q = "subscription { postPublished { id title author { name } tags { name } } }"
        return {"query": q}, token
    if kind == 2:
        q = "subscription C($p: ID!) { commentAdded(postId: $p) { id body author { name } } }"
        return {"query": q, "variables": {"p": str(w.followed[index % len(w.followed)])}}, token
    writer_id = w.writers[index % len(w.writers)][0]
    q = "subscription U($id: ID!) { postUpdated(id: $id) { id title version } }"
    return {"query": q, "variables": {"id": str(w.own_posts[writer_id][0])}}, token


async def subscriber(port: int, index: int, w: World, tally: Tally, stop: float) -> None:
    """One WebSocket subscriber, reading its events until ``stop``; on a closed connection it
    subscribes again."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    payload, token = subscription_for(index, w)
    init = {"Authorization": f"Bearer {token}"} if token else {}
    while time.monotonic() < stop:
        try:
            async with connect(
                f"ws://{HOST}:{port}/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                proxy=None,
                open_timeout=60,
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                if json.loads(await ws.recv()).get("type") != "connection_ack":
                    tally.failures["subscription: no connection_ack"] += 1
                    return
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                tally.subscriptions += 1
                tally.sockets[index] = ws
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "ping":
                        await ws.send('{"type": "pong"}')
                    elif message.get("type") == "next":
                        tally.events += 1
                        if message["payload"].get("errors"):
                            tally.failures["subscription: errors in an event"] += 1
                    elif message.get("type") in ("error", "complete"):
                        tally.failures[f"subscription: {message['type']}"] += 1
                        break
        except (OSError, WebSocketException, TimeoutError):
            pass  # closed by the churn, or by the server: subscribe again
        except asyncio.CancelledError:
            return
        finally:
            tally.sockets.pop(index, None)


async def churn(tally: Tally, every: float, stop: float) -> None:
    """Close one subscriber's connection every ``every`` seconds (it subscribes again):
    connections, operations and queues are made and dropped all through the run."""
    rng = random.Random(7)
    while time.monotonic() + every < stop:
        await asyncio.sleep(every)
        if tally.sockets:
            await tally.sockets[rng.choice(sorted(tally.sockets))].close()


# --- samples ------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes under ``serve`` (its spawned children; not multiprocessing's
    resource tracker)."""
    found = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"resource_tracker" not in command:
            found.append(child)
    return found


def rss_mb(pid: int) -> float:
    """``VmRSS`` of ``pid`` in MiB (NaN once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    minute: float
    rss: list[float]
    pids: list[int]
    answered: int
    events: int


async def sample_loop(
    parent: int, args: argparse.Namespace, tally: Tally, start: float, stop: float
) -> list[Sample]:
    samples: list[Sample] = []
    times = [start + k * args.interval for k in range(int((stop - start) / args.interval) + 1)]
    if times[-1] < stop - 0.5:
        times.append(stop)  # the last sample when the load ends
    for due in times:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        pids = [parent] if args.trace else workers_of(parent)
        row = Sample(
            (time.monotonic() - start) / 60,
            [rss_mb(p) for p in pids],
            pids,
            tally.answered.total(),
            tally.events,
        )
        samples.append(row)
        rss = "  ".join(f"{r:7.1f}" for r in row.rss)
        log(f"{row.minute:5.1f} min  RSS MB {rss}  answered {row.answered}  events {row.events}")
    return samples


async def soak(args: argparse.Namespace, port: int, parent: int, w: World) -> tuple[Any, ...]:
    tally = Tally()
    start = time.monotonic()
    stop = start + args.minutes * 60
    period = args.connections / args.rate
    sampling = asyncio.create_task(sample_loop(parent, args, tally, start, stop))
    subs = [
        asyncio.create_task(subscriber(port, i, w, tally, stop)) for i in range(args.subscribers)
    ]
    churning = asyncio.create_task(churn(tally, args.churn, stop))
    load = [connection(port, w, tally, period, stop) for _ in range(args.connections)]
    await asyncio.gather(*load)
    samples = await sampling
    churning.cancel()
    for task in subs:
        task.cancel()
    await asyncio.gather(*subs, churning, return_exceptions=True)
    return tally, samples


# --- tracemalloc worker (--trace) -----------------------------------------------------------


def _closure_cells(factories: Sequence[Any]) -> dict[str, Any]:
    """The variables the schema's extension factories close over, by name (``build_schema``
    keeps the APQ store and the validation results there)."""
    cells: dict[str, Any] = {}
    for factory in factories:
        code, closure = getattr(factory, "__code__", None), getattr(factory, "__closure__", None)
        if code is not None and closure:
            cells.update(zip(code.co_freevars, (c.cell_contents for c in closure), strict=True))
    return cells


#: The traced worker's app, once built (``census`` reads its state).
_served: list[Any] = []


def _traced_app() -> Any:
    """``server.served_app``, kept for ``census``."""
    import server

    app = server.served_app()
    _served.append(app)
    return app


def census() -> list[tuple[str, int, str]]:
    """(cache, entries now, bound) for every per-process cache the code keeps (issue 19's
    "what the caches hold at their bounds"); read in the traced worker. Instances owned by
    the app (the viewer cache, the engine, connections) are found with ``gc``."""
    import gc
    import logging

    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    import schema as composition
    from db import reader, rows
    from schema.auth import tokens, viewer_cache
    from schema.engine import execution
    from schema.engine.extensions import limits
    from schema.live.broker import Broker
    from schema.reads import loaders
    from schema.telemetry import metrics
    from schema.transport import streams

    # What start-up made is frozen (gc_tuning: gc.freeze()), which gc.get_objects() leaves
    # out: the served app's own objects are read from its state instead.
    objects = gc.get_objects()
    wanted = (composition.InkwellSchema, viewer_cache.ViewerCache, AsyncEngine, Broker)
    found: dict[type, list[Any]] = {kind: [] for kind in wanted}
    for app in _served:
        served = [app.state.viewers, app.state.engine, app.state.broker]
        served += [getattr(getattr(r, "app", None), "schema", None) for r in app.routes]
        objects = [*objects, *served]
        for engine in (app.state.engine,):
            idle = list(getattr(getattr(engine.sync_engine.pool, "_pool", None), "queue", ()))
            objects += [entry.dbapi_connection for entry in idle]
            objects += [getattr(entry.dbapi_connection, "_connection", None) for entry in idle]
    connections, adapted = [], []
    for obj in {id(o): o for o in objects}.values():
        for kind in wanted:
            if isinstance(obj, kind):
                found[kind].append(obj)
        if isinstance(obj, asyncpg.Connection):
            connections.append(obj)
        elif isinstance(obj, AsyncAdapt_asyncpg_connection):
            adapted.append(obj)  # SQLAlchemy's adapter of one
    cells: dict[str, Any] = {}
    for schema in found[composition.InkwellSchema]:
        cells.update(_closure_cells(schema.extensions))
    engines = found[AsyncEngine]
    pools = [engine.sync_engine.pool for engine in engines]
    plans = [len(cache._plans._values) for cache in execution._plans.values()]
    parsed = len(cells.get("parsed", ()))
    kinds = len(rows._record_classes) + len(rows._row_types) + len(rows._entity_rows)
    labelled = (metrics._requests, metrics._durations, metrics._statements, metrics._errors)
    children = sum(map(len, labelled))
    by_text = streams._remembered_operation_type.cache_info().currsize
    viewers = sum(len(v._entries) for v in found[viewer_cache.ViewerCache])
    compiled = sum(len(e.sync_engine._compiled_cache or ()) for e in engines)
    pooled = sum(p.checkedin() + p.checkedout() for p in pools)
    driver = sum(len(c._stmt_cache) for c in connections)
    prepared = sum(len(a._prepared_statement_cache or ()) for a in adapted)
    subscriptions = sum(sum(map(len, broker._subscriptions.values())) for broker in found[Broker])
    return [
        ("parsed documents (TextCache)", parsed, "DOCUMENTS / CHARACTERS"),
        ("validation results by text", len(cells.get("validated", ())), "PARSED_DOCUMENTS"),
        ("APQ store", len(cells.get("persisted", ())), "PERSISTED_QUERIES_CACHE_SIZE"),
        ("cost measures", len(limits._measures._values), f"{limits.MEASURES}"),
        ("measured operations' variables", len(limits._measures._names), "cleared at MEASURES"),
        ("documents' definitions (QueryLimits)", len(limits._documents), "cleared at MEASURES"),
        ("plans", sum(plans), f"{execution.PLANS} per schema"),
        ("operation type by text (streams)", by_text, f"{streams.REMEMBERED}"),
        ("verified tokens", len(tokens._verified), f"{tokens.VERIFIED_TOKENS}"),
        ("viewers", viewers, f"{viewer_cache.MAX_ENTRIES}"),
        ("batch statements", len(loaders._statements), f"{loaders.STATEMENTS} (+50 %)"),
        ("compiled statements (db.reader, weak)", len(reader._prepared), "follows the statements"),
        ("row classes", kinds, "column layouts"),
        ("SQLAlchemy compiled cache", compiled, "500 per engine"),
        ("pooled connections", pooled, "DB_POOL_SIZE + DB_MAX_OVERFLOW"),
        ("asyncpg statement caches", driver, "100 per connection"),
        ("SQLAlchemy asyncpg prepared statements", prepared, "100 per connection"),
        ("subscriptions", subscriptions, "clients"),
        ("metric children", children, "METRICS_OPERATION_NAMES x types x outcomes"),
        ("loggers", len(logging.Logger.manager.loggerDict), "module names"),
        ("gc-tracked objects", len(objects), "-"),
    ]  # fmt: skip


def traced_worker(port: int, out: Path, interval: float, warmup: float, frames: int) -> None:
    """Serve one worker in this process under tracemalloc; every ``interval`` seconds write
    the cache census and the sites that grew most since the first sample after ``warmup``
    seconds to ``out``/trace-<minute>.txt."""
    import tracemalloc

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))

    def watch() -> None:
        # Traced from the first answer on: start-up under tracemalloc is several times slower,
        # and only what grows while serving matters.
        while True:
            try:
                urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        tracemalloc.start(frames)
        started = time.monotonic()
        base: tracemalloc.Snapshot | None = None
        while True:
            time.sleep(interval)
            minute = (time.monotonic() - started) / 60
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            if base is None and minute * 60 >= warmup:
                base = snapshot
            lines = [
                f"minute {minute:.1f}, traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB"
            ]
            lines += ["", "cache | entries | bound", "---|---:|---"]
            try:
                lines += [f"{n} | {size} | {b}" for n, size, b in census()]
            except Exception as error:  # a stale census must not stop the traces
                lines.append(f"census failed: {error!r}")
            if base is not None:
                lines += ["", "grew most since the warm-up (by traceback):"]
                for stat in snapshot.compare_to(base, "traceback")[:25]:
                    lines.append(f"{stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks")
                    lines += [f"    {frame}" for frame in stat.traceback.format()[-2 * frames :]]
            (out / f"trace-{minute:05.1f}.txt").write_text("\n".join(lines) + "\n")

    threading.Thread(target=watch, daemon=True).start()
    import uvicorn

    uvicorn.run(
        _traced_app, factory=True, host=HOST, port=port, loop="uvloop",
        http="httptools", access_log=False, log_level="warning",
    )  # fmt: skip


# --- run ----------------------------------------------------------------------------------


def start(args: argparse.Namespace, port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """``serve`` with ``--workers`` workers, or (``--trace``) the traced single worker."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "DATABASE_URL": args.database_url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": JWT_SECRET,
        # The writers sign in once (``login``): their access tokens must outlive the run.
        "JWT_TTL_SECONDS": str(24 * 3600),
        "WORKERS": str(args.workers),
        "SQL_STATS": "false",
    }
    if args.trace:
        command = [
            sys.executable, str(Path(__file__).resolve()), "--traced-worker", str(port),
            "--log-dir", str(log_dir), "--interval", str(args.interval),
            "--warmup", str(args.warmup), "--trace-frames", str(args.trace_frames),
        ]  # fmt: skip
    else:
        command = [sys.executable, "server.py", "serve", "--host", HOST, "--port", str(port)]
    output = (log_dir / "server.log").open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}: see {log_dir}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2):
                if args.trace or len(workers_of(process.pid)) >= args.workers:
                    time.sleep(3)  # every worker's app built, not only the first that answered
                    return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"the server was not ready within 90 s: see {log_dir}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the serve process (uvicorn stops its workers), SIGKILL after 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_world(args: argparse.Namespace, port: int) -> World:
    """Ids to draw from, and the members' tokens: the writers signed in with ``login``
    (Argon2: ~0.1 s each, before any sample); every other active member a reader, with a
    token signed with the run's key (as ``login`` would sign it), so signed-in reads come
    from a thousand viewers, as in production, not from a few."""
    sys.path.insert(0, str(ROOT))
    from schema.auth.tokens import issue_token
    from settings import Settings

    facts = asyncio.run(database_facts(args.database_url))
    members = asyncio.run(
        read_rows(
            args.database_url,
            "SELECT id, email FROM users WHERE role = 'member' AND is_active AND EXISTS "
            "(SELECT 1 FROM posts WHERE posts.author_id = users.id AND posts.title NOT LIKE "
            "'Soak%') ORDER BY id DESC",
        )
    )
    writers = [(row[0], sign_in(port, row[1], 30)) for row in members[:WRITERS]]
    settings = Settings(jwt_secret=JWT_SECRET, jwt_ttl_seconds=24 * 3600)
    readers = [issue_token(settings, row[0]).token for row in members[WRITERS:]]
    owned = asyncio.run(
        read_rows(
            args.database_url,
            "SELECT author_id, id, version FROM posts WHERE author_id IN :a ORDER BY id",
            a=[pk for pk, _ in writers],
        )
    )
    own_posts: dict[int, list[int]] = {pk: [] for pk, _ in writers}
    version_of = {}
    for author, pk, version in owned:
        if len(own_posts[author]) < 10:
            own_posts[author].append(pk)
            version_of[pk] = version
    users = asyncio.run(read_rows(args.database_url, "SELECT id FROM users ORDER BY id"))
    return World(
        post_ids=facts.post_ids,
        user_ids=[row[0] for row in users],
        tag_names=[t for t in facts.tag_names if not t.startswith("soak-")],  # no repeats
        writers=writers,
        readers=readers,
        own_posts=own_posts,
        versions=version_of,
        followed=facts.post_ids[:FOLLOWED_POSTS],
    )


def growth(samples: list[Sample], warmup: float, column: int) -> tuple[float, float]:
    """(growth %, slope MB/min) of one worker from the first sample at or after ``warmup``
    minutes to the last; NaN when there is none."""
    after = [(s.minute, s.rss[column]) for s in samples if s.minute >= warmup - 1e-6]
    if len(after) < 2:
        return float("nan"), float("nan")
    r0, r1 = after[0][1], after[-1][1]
    mean_m = sum(m for m, _ in after) / len(after)
    mean_r = sum(r for _, r in after) / len(after)
    spread = sum((m - mean_m) ** 2 for m, _ in after)
    slope = sum((m - mean_m) * (r - mean_r) for m, r in after) / spread if spread else 0.0
    return (r1 - r0) / r0 * 100, slope


def report(
    args: argparse.Namespace, tally: Tally, samples: list[Sample], load_cpu: float, db: str
) -> tuple[str, bool]:
    columns = max(len(s.rss) for s in samples)
    names = ["traced worker"] if args.trace else [f"worker {i + 1}" for i in range(columns)]
    restarted = any(s.pids != samples[0].pids for s in samples)
    lines = [
        f"# Memory soak, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python bench/soak.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"{args.workers if not args.trace else 1} worker(s), {args.rate:g} requests/s on "
        f"{args.connections} connections, {args.subscribers} subscribers (one reconnected "
        f"every {args.churn:g} s), {args.minutes:g} min, a sample every {args.interval:g} s, "
        f"warm-up {args.warmup / 60:.3g} min. Database {args.database_url.split('@')[-1]}.",
        "",
        "| minute | " + " | ".join(f"{n} RSS (MB)" for n in names) + " | requests | events |",
        "|---:|" + "---:|" * (columns + 2),
    ]
    for s in samples:
        rss = " | ".join(f"{r:.1f}" for r in s.rss + [float("nan")] * (columns - len(s.rss)))
        lines.append(f"| {s.minute:.1f} | {rss} | {s.answered:,} | {s.events:,} |")
    lines.append("")
    ok = not restarted
    for column, name in enumerate(names):
        pct, slope = growth(samples, args.warmup / 60, column)
        within = pct <= args.max_growth
        ok = ok and within
        lines.append(
            f"- {name}: {pct:+.1f} % after the warm-up ({slope:+.2f} MB/min), "
            f"{'within' if within else 'over'} the {args.max_growth:g} % limit"
        )
    if restarted:
        lines.append("- a worker restarted during the run (its pid changed): not a valid soak")
    minutes = args.minutes
    failures = ", ".join(f"{k} {v}" for k, v in tally.failures.most_common()) or "none"
    lines += [
        f"- requests answered: {tally.answered.total():,} "
        f"({tally.answered.total() / minutes / 60:.1f}/s); events read: {tally.events:,}; "
        f"subscriptions opened: {tally.subscriptions:,}",
        f"- unexpected answers: {failures}",
        f"- load generator CPU: {load_cpu / (minutes * 60) * 100:.0f} % of one core",
        "",
        f"Versions: {versions(db)}",
    ]
    return "\n".join(lines) + "\n", ok


def interval(text: str) -> float:
    """Seconds from ``20``, ``20s`` or ``1m``."""
    text = text.strip().lower()
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text.removesuffix("s"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--users", type=int, default=1000, help="seed size (default 1000)")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=interval, default=60.0, help="e.g. 60, 20s, 1m")
    parser.add_argument("--warmup", type=interval, default=600.0, help="default 10m")
    parser.add_argument("--max-growth", type=float, default=5.0, help="per cent (default 5)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=40.0, help="HTTP requests/s (default 40)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--churn", type=float, default=2.0, help="seconds between reconnects")
    parser.add_argument("--trace", action="store_true", help="one worker under tracemalloc")
    parser.add_argument("--trace-frames", type=int, default=8)
    parser.add_argument("--out", type=Path, help="default: bench/results/soak-<UTC>.md")
    parser.add_argument("--traced-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.traced_worker:
        traced_worker(
            args.traced_worker, args.log_dir, args.interval, args.warmup, args.trace_frames
        )
        return 0
    asyncio.run(ensure_database(args.database_url))
    if not args.skip_seed:
        seed_database(args.database_url, args.users)
    out = args.out or ROOT / "bench" / "results" / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
    log_dir = out.with_suffix(".logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = start(args, port, log_dir)
    try:
        world = prepare_world(args, port)
        log(f"soaking for {args.minutes:g} min; workers {workers_of(process.pid) or [process.pid]}")
        before = os.times()
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            tally, samples = runner.run(soak(args, port, process.pid, world))
        after = os.times()
        load_cpu = after.user + after.system - before.user - before.system
    finally:
        stop(process)
    db = asyncio.run(database_facts(args.database_url)).version
    text, ok = report(args, tally, samples, load_cpu, db)
    out.write_text(text)
    print(text)
    log(f"wrote {out} (server log{' and traces' if args.trace else ''}: {log_dir})")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
