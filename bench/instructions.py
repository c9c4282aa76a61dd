"""Instructions per request for the peer workloads W1, W2, W3 (and the write, W4), counted by
callgrind.

A deterministic cost measurement, for comparing versions of the code side by side where
wall-clock throughput (``bench/peers.py``) moves by ±10 % with the box's load.

    python bench/instructions.py                              # this checkout, W1-W3
    python bench/instructions.py --root . --root ../worktree --workloads W1,W3 --jobs 2

Method
------
1. Once, here: the harness's database is prepared as ``bench/peers.py`` prepares it (its
   ``_prepare``: migration 0002's account trigger, and the id of an admin), and a token for
   that admin is signed with its ``SECRET``, as ``peers.main`` does.
2. For each ``--root`` (a checkout, e.g. a git worktree, run with this interpreter and its
   venv), workload and request count N (``--requests``, 100 and 400): one process under
   ``valgrind --tool=callgrind`` imports ``server`` from that root with the environment
   ``peers.main`` gives the server (so ``server.app`` is the app uvicorn would serve), runs
   its lifespan and, on uvloop, sends ``--warmup`` requests and then N, one at a time, each a
   raw ASGI HTTP call through the whole Starlette app (middleware, router, Strawberry's
   view) with the headers wrk sends and the harness's body (``workloads.request_body``) for
   ``bench/peers_queries.json``; W3's post ids are those of the harness's sequential check
   (``workloads.sequential_post_ids``). ``PYTHONHASHSEED=0`` makes the runs repeatable.
3. That process only writes each response to a file; this one then checks every response
   (status 200, no ``errors``, the item counts of the query set's ``counts`` paths as
   ``workloads.EXPECTED_COUNTS`` has them, W3's post the one asked for), so a broken variant
   cannot look fast and the checking is not counted. W4 (``--workloads W4``) adds a comment
   per request as the harness's member, to the published posts of the harness's sequential
   check; its comments are deleted after each run.
4. Instructions per request = (total at N=400 - total at N=100) / 300: start-up, warm-up and
   shutdown are the same in both runs and cancel out. Four runs of one checkout gave W1
   2.992-2.997 M and W3 2.196-2.202 M (7da159c): the event loop's turns while PostgreSQL
   answers are counted too, and depend a little on the machine's load. W2 at ``--requests
   20,80`` moves by about 0.3 % between versions (where the collector's passes fall).

Units: instructions executed (callgrind's ``Ir`` event: the ``totals:`` line of its output
file), every thread, user space only: the kernel's work (the sockets to PostgreSQL) and
PostgreSQL's are not counted. Source: Valgrind user manual, "Callgrind: a call-graph
generating cache and branch prediction profiler" (``--callgrind-out-file``), and its
"Callgrind Format Specification" (``totals:``, ``summary:``).

Arguments: ``--root DIR`` (repeatable; default this checkout; the first is the baseline of the
table's Δ column), ``--workloads W1,W2,W3``, ``--requests 100,400`` (two counts, the smaller
first), ``--warmup 20``, ``--jobs 1`` (callgrind processes at once: the counts do not depend
on it). Needs valgrind, and PostgreSQL with the harness's ``bench`` database (``python3
../shared/peers/seed.py --users 1000``). On the 2-core box the two runs take about 3 minutes
for W1 or W3 and about 20 for W2 (``--requests 20,80``: about 4). Exits 0; 1 with the cause
when a run fails or a response is not the workload's answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
import peers  # bench/peers.py: the harness's database, its preparation, the token's key

sys.path.insert(0, str(peers.HARNESS))
import workloads  # ../shared/peers/workloads.py: the bodies, the counts

SPECS = json.loads(peers.QUERIES.read_text())


def prepare(root: Path) -> tuple[dict[str, str], int, list[int]]:
    """Install the trigger and the outbox; returns the tokens by workload (W4: the harness's
    member's, the others an admin's), the highest post id and the published posts' ids."""

    async def facts() -> tuple[int, int, int, list[int]]:
        admin, member = await peers._prepare()
        connection = await asyncpg.connect(peers.DSN)
        try:
            max_post = int(await connection.fetchval("SELECT max(id) FROM posts"))
            published = await connection.fetch(
                "SELECT id FROM posts WHERE status = 'published' ORDER BY id"
            )
            return admin, member, max_post, [row["id"] for row in published]
        finally:
            await connection.close()

    admin, member, max_post, published = asyncio.run(facts())
    sys.path.insert(0, str(root))
    from schema.auth.tokens import issue_token
    from settings import Settings

    settings = Settings(jwt_secret=peers.SECRET, jwt_ttl_seconds=24 * 3600)
    tokens = {name: issue_token(settings, admin).token for name in SPECS}
    tokens["W4"] = issue_token(settings, member).token
    return tokens, max_post, published


def bodies(workload: str, count: int, max_post: int, published: list[int]) -> list[bytes]:
    """The bodies the harness would send (W3: a different post each time; W4: a different
    published post each time)."""
    truth = {"n_posts": max_post, "published_ids": published}
    ids = workloads.sequential_post_ids(workload, truth, count)
    return [workloads.request_body(SPECS[workload], post_id).encode() for post_id in ids]


async def forget_comments() -> None:
    """Delete W4's comments (the harness's marker rows), as the harness does after a run."""
    connection = await asyncpg.connect(peers.DSN)
    try:
        await connection.execute(f"DELETE FROM comments WHERE {workloads.W4_MARKER_WHERE}")
    finally:
        await connection.close()


def problem(workload: str, body: bytes, status: int, raw: bytes) -> str | None:
    """Why ``raw`` is not the complete answer to ``body``, or None."""
    document = json.loads(raw) if status == 200 else None
    if not isinstance(document, dict) or "errors" in document or "data" not in document:
        return f"status {status}: {raw[:500]!r}"
    for label, expected in workloads.EXPECTED_COUNTS[workload].items():
        found = workloads.count_path(document, SPECS[workload]["counts"][label])
        if found != expected:
            return f"{found} {label}, expected {expected}"
    if workload == "W3":
        asked = json.loads(body)["variables"]["id"]
        if str(document["data"]["post"]["databaseId"]) != asked:
            return f"asked for post {asked}, got {document['data']['post']}"
    return None


async def call(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One POST /graphql through the ASGI app, as uvicorn makes it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays: the app cancels this wait
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def child(root: Path, job: dict[str, Any]) -> None:
    """The measured process: sends ``job``'s requests, writes the responses to its file."""
    os.chdir(root)
    os.environ.update(peers.ENVIRONMENT)  # the server's, as peers.main starts it
    sys.path.insert(0, str(root))
    import uvloop

    import server

    if not Path(server.__file__).resolve().is_relative_to(root):
        raise SystemExit(f"server imported from {server.__file__}, not from {root}")
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {job['token']}".encode()),
    ]
    requests = bodies(job["workload"], job["count"], job["max_post"], job["published"])

    async def run(out: BinaryIO) -> None:
        app = server.app
        async with app.router.lifespan_context(app):
            for body in requests:
                status, raw = await call(app, body, headers)
                out.write(b"%d %d\n" % (status, len(raw)))
                out.write(raw)

    with open(job["responses"], "wb") as out:
        asyncio.run(run(out), loop_factory=uvloop.new_event_loop)


def responses(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as found:
        while line := found.readline():
            status, length = map(int, line.split())
            yield status, found.read(length)


def instructions(root: Path, workload: str, count: int, args: argparse.Namespace) -> int:
    """Total instructions of one callgrind run of ``warmup + count`` checked requests."""
    with tempfile.TemporaryDirectory(prefix="inkwell-callgrind-") as folder:
        out, answers = Path(folder) / "callgrind.out", Path(folder) / "responses"
        total = args.warmup + count
        job = {"workload": workload, "count": total, "max_post": args.max_post}
        job |= {"published": args.published, "token": args.tokens[workload]}
        job |= {"responses": str(answers)}
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += [sys.executable, __file__, "--root", str(root), "--child", json.dumps(job)]
        done = subprocess.run(
            command, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True
        )
        run = f"{workload} N={count} in {root}"
        if done.returncode != 0:
            raise SystemExit(f"{run} failed:\n{done.stderr[-4000:]}")
        if workload == "W4":
            asyncio.run(forget_comments())
        sent = bodies(workload, total, args.max_post, args.published)
        received = list(responses(answers))
        if len(received) != total:
            raise SystemExit(f"{run}: {len(received)} responses for {total} requests")
        for body, (status, raw) in zip(sent, received, strict=True):
            if (why := problem(workload, body, status, raw)) is not None:
                raise SystemExit(f"{run}: {why}")
        found = re.search(r"^(?:totals|summary): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit(f"{run}: no totals in {out}")
        return int(found.group(1))


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", action="append", type=Path, help="a checkout (repeatable)")
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--requests", default="100,400", help="two request counts")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in args.root or [peers.ROOT]]
    if args.child:
        child(roots[0], json.loads(args.child))
        return 0
    few, many = (int(n) for n in args.requests.split(","))
    names = args.workloads.split(",")
    args.tokens, args.max_post, args.published = prepare(roots[0])
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = {
            (root, name, n): pool.submit(instructions, root, name, n, args)
            for root in roots
            for name in names
            for n in (few, many)
        }
    totals = {run: future.result() for run, future in runs.items()}
    print(f"Instructions per request, (N={many} - N={few}) / {many - few}, callgrind:\n")
    print("| workload | " + " | ".join(str(root) for root in roots) + " | Δ vs the first |")
    print("|---|" + "---:|" * (len(roots) + 1))
    for name in names:
        per = [(totals[r, name, many] - totals[r, name, few]) / (many - few) for r in roots]
        change = " / ".join(f"{(p / per[0] - 1) * 100:+.2f} %" for p in per[1:]) or "-"
        print(f"| {name} | " + " | ".join(f"{p / 1e6:.3f} M" for p in per) + f" | {change} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
