"""A write mix, per operation: createPost with tags, updatePost with expectedVersion, and a
10-way version race, over HTTP against one uvicorn worker pinned to CPU 0.

Runs on the peer harness's database (``bench``, seeded by ``../shared/peers/seed.py``; this
script installs the outbox and the account trigger as ``bench/peers.py`` does), signed in as
members with tokens made with the server's ``JWT_SECRET``. For each operation it reports
latency p50/p99 (ms, over every request after the warm-up), requests/s, and the statements
per request the server counted (``SQL_STATS``: ``extensions.sql.statements``, BEGIN and COMMIT
not among them: add 2). Every answer is checked: a committed ``PostPayload``, and in each race
exactly one winner and nine ``VersionConflict``s naming the winner's version.

    python bench/writes.py [--seconds 10] [--concurrency 8] [--races 30]

The rows it writes (posts titled ``bench-writes …``) are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import DSN, ENVIRONMENT, SECRET, UVICORN_FLAGS, _prepare  # noqa: E402

PORT = 8712
CREATE = """mutation($i: CreatePostInput!) { createPost(input: $i) { __typename
  ... on PostPayload { post { id version } } ... on MutationError { message } } }"""
UPDATE = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename
  ... on PostPayload { post { version } } ... on VersionConflict { currentVersion }
  ... on MutationError { message } } }"""
TITLE = "bench-writes"
#: The writers: the members with the highest ids (the harness's W4 writes as the first).
MEMBERS_SQL = "SELECT id FROM users WHERE role = 'member' AND is_active ORDER BY id DESC LIMIT $1"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str
) -> Any:
    started = time.perf_counter()
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert "errors" not in body, body
    return body, (time.perf_counter() - started) * 1000.0


async def _loop(seconds: float, concurrency: int, step: Any) -> tuple[list[float], list[int]]:
    """Run ``step(index)`` on ``concurrency`` closed loops for ``seconds``: latencies (ms)
    and statement counts of every answer."""
    latencies: list[float] = []
    statements: list[int] = []
    deadline = time.monotonic() + seconds

    async def one(index: int) -> None:
        while time.monotonic() < deadline:
            body, elapsed = await step(index)
            latencies.append(elapsed)
            statements.append(body["extensions"]["sql"]["statements"])

    await asyncio.gather(*(one(i) for i in range(concurrency)))
    return latencies, statements


def _line(name: str, latencies: list[float], statements: list[int], seconds: float) -> str:
    mean = sum(statements) / len(statements)
    return (
        f"| {name} | {len(latencies)} | {len(latencies) / seconds:.1f} | "
        f"{_percentile(latencies, 50):.2f} | {_percentile(latencies, 99):.2f} | {mean:.2f} |"
    )


async def _measure(args: argparse.Namespace, tokens: dict[int, str]) -> list[str]:
    writers = list(tokens)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{PORT}", timeout=60, limits=limits
    ) as client:
        counter = iter(range(10**9))

        async def create(index: int) -> Any:
            user = writers[index % len(writers)]
            tags = ["python", "sql", f"bench-writes-{next(counter) % 4}"]
            variables = {"i": {"title": f"{TITLE} {index}", "tagNames": tags, "publish": True}}
            body, elapsed = await _post(client, CREATE, variables, tokens[user])
            assert body["data"]["createPost"]["__typename"] == "PostPayload", body
            assert body["extensions"]["transaction"] == "committed", body
            return body, elapsed

        # One post per loop for the updates, each updated by its own author only.
        own: dict[int, list[Any]] = {}
        for index in range(args.concurrency):
            body, _ = await create(index)
            own[index] = [body["data"]["createPost"]["post"]["id"], 1]

        async def update(index: int) -> Any:
            post = own[index]
            variables = {"i": {"id": post[0], "expectedVersion": post[1], "title": f"{TITLE} v"}}
            variables["i"]["title"] += str(post[1])  # a new title: a real change
            body, elapsed = await _post(
                client, UPDATE, variables, tokens[writers[index % len(writers)]]
            )
            result = body["data"]["updatePost"]
            assert result["__typename"] == "PostPayload", body
            post[1] = result["post"]["version"]
            return body, elapsed

        rows = ["| operation | requests | req/s | p50 ms | p99 ms | statements/request |"]
        rows.append("|---|---:|---:|---:|---:|---:|")
        for name, step in (("createPost, 3 tags", create), ("updatePost, expectedVersion", update)):
            await _loop(args.warmup, args.concurrency, step)
            latencies, statements = await _loop(args.seconds, args.concurrency, step)
            rows.append(_line(name, latencies, statements, args.seconds))

        # The race: 10 updates of one post, all from version v; one wins.
        racer = writers[0]
        body, _ = await create(0)
        post_id, version = body["data"]["createPost"]["post"]["id"], 1
        latencies, statements, rounds = [], [], []
        started = time.perf_counter()
        for race in range(args.races):
            variables = [
                {"i": {"id": post_id, "expectedVersion": version, "title": f"{TITLE} r{race}-{n}"}}
                for n in range(10)
            ]
            began = time.perf_counter()
            answers = await asyncio.gather(
                *(_post(client, UPDATE, v, tokens[racer]) for v in variables)
            )
            rounds.append((time.perf_counter() - began) * 1000.0)
            kinds = [a[0]["data"]["updatePost"]["__typename"] for a in answers]
            assert kinds.count("PostPayload") == 1, kinds
            assert kinds.count("VersionConflict") == 9, kinds
            won = next(
                a[0] for a in answers if a[0]["data"]["updatePost"]["__typename"] == "PostPayload"
            )
            version = won["data"]["updatePost"]["post"]["version"]
            for answer, elapsed in answers:
                conflict = answer["data"]["updatePost"]
                if conflict["__typename"] == "VersionConflict":
                    assert conflict["currentVersion"] == version, answer
                latencies.append(elapsed)
                statements.append(answer["extensions"]["sql"]["statements"])
        seconds = time.perf_counter() - started
        rows.append(_line("10-way race (each request)", latencies, statements, seconds))
        rows.append(
            f"| 10-way race (a round: all 10 answered) | {len(rounds)} | "
            f"{len(rounds) / seconds:.1f} | {_percentile(rounds, 50):.2f} | "
            f"{_percentile(rounds, 99):.2f} | |"
        )
    return rows


def _tokens(count: int) -> dict[int, str]:
    from schema.auth.tokens import issue_token
    from settings import Settings

    settings = Settings(jwt_secret=SECRET, jwt_ttl_seconds=3600)

    async def members() -> list[int]:
        connection = await asyncpg.connect(DSN)
        try:
            rows = await connection.fetch(MEMBERS_SQL, count)
        finally:
            await connection.close()
        return [row["id"] for row in rows]

    return {user: issue_token(settings, user).token for user in asyncio.run(members())}


async def _clean() -> None:
    connection = await asyncpg.connect(DSN)
    try:
        await connection.execute(f"DELETE FROM posts WHERE title LIKE '{TITLE}%'")
        await connection.execute("DELETE FROM tags WHERE name LIKE 'bench-writes-%'")
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--races", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(_prepare())
    tokens = _tokens(args.concurrency)
    environment = {**os.environ, **ENVIRONMENT, "SQL_STATS": "true"}
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "uvicorn", "server:app",
        "--host", "127.0.0.1", "--port", str(PORT), *UVICORN_FLAGS,
    ]  # fmt: skip
    print("server:", shlex.join(command), file=sys.stderr)
    server = subprocess.Popen(command, cwd=ROOT, env=environment)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        os.sched_setaffinity(0, {1})  # the load beside the server, not on its core
        rows = asyncio.run(_measure(args, tokens))
    finally:
        server.terminate()
        server.wait(10)
        asyncio.run(_clean())
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
