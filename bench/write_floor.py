"""What W4's write costs in CPU on each layer Inkwell is built of, side by side in one process:
the floor under ``addComment`` that the issue's rules leave.

Issue 22 asks for W4 at 0.5x PostGraphile's requests/s on one core while keeping every rule,
the Session as the unit of work (``session.add``, flush, identity map) among them. Each
variant below makes the same write as W4 (the harness's member comments on a published post:
the post's id, author and status read ``FOR SHARE`` joined to the member's ``users`` row, the
comment inserted with its server-set values returned, the event's outbox row with its lock and
``pg_notify``, ``COMMIT``), one at a time, in a unit of work of its own:

- ``driver``: asyncpg alone, the five statements as SQL text (no SQLAlchemy);
- ``session, Core``: an ``AsyncSession`` running the SELECT and a Core ``INSERT … RETURNING``
  (``session.execute``), the outbox on the driver as Inkwell writes it, ``session.commit()``;
- ``session, ORM``: the same with the comment as an ORM object, ``session.add`` and
  ``session.flush()`` (the mapper's eager defaults come back with RETURNING): what the rules
  require of the write itself, with no GraphQL, no HTTP, no permission or event code;
- ``Inkwell, W4``: the whole app, the harness's W4 request through the ASGI app in process
  (``bench/instructions.call``: middleware, Strawberry, the resolver, the transaction boundary;
  no socket);
- ``Inkwell, { __typename }``: the same app answering the smallest query: what HTTP handling
  and GraphQL cost before any resolver.

Reported: CPU per write (``time.process_time``: user and system time of this process, so
PostgreSQL's own work is not in it), the median of ``--rounds`` rounds of ``--writes`` writes
each, the variants interleaved in every round. ``ceiling`` is 1 s ÷ that CPU: the requests/s
one core could at most serve if nothing else ran (uvicorn's HTTP parsing and the sockets come
on top for the app's rows).

    python bench/write_floor.py [--writes 1000] [--rounds 5]

Needs the harness's ``bench`` database (``python3 ../shared/peers/seed.py --users 1000``); the
comments it writes are deleted at the end. Exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import instructions  # noqa: E402 (bench/instructions.py: the harness's bodies and ASGI call)
import peers  # noqa: E402

SELECT_SQL = (
    "SELECT p.id, p.author_id, p.status, v.id, v.name, v.role, v.is_active "
    "FROM posts p JOIN users v ON v.id = $2 WHERE p.id = $1 FOR SHARE OF p"
)
INSERT_SQL = (
    "INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, $3) "
    "RETURNING id, created_at, updated_at, version"
)

Write = Callable[[int], Awaitable[Any]]


async def variants(
    member: int, token: str, published: list[int], resources: AsyncExitStack
) -> dict[str, Write]:
    """Each variant's write of one comment by ``member`` (signed in with ``token``) on the
    published post whose id it is given (one of ``published``); the engine and the pool they
    use are closed with ``resources``."""
    from sqlalchemy import bindparam, insert, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    import server
    from db import models
    from schema.live import Event, EventKind, outbox
    from schema.live.postgres import CHANNEL

    engine = create_async_engine(peers.ENVIRONMENT["DATABASE_URL"])
    resources.push_async_callback(engine.dispose)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    pool = await asyncpg.create_pool(peers.DSN, min_size=1, max_size=2)
    resources.push_async_callback(pool.close)
    post, viewer = models.Post, models.User
    checked = (
        select(post.id, post.author_id, post.status, viewer)
        .join(viewer, viewer.id == bindparam("viewer"))
        .where(post.id == bindparam("post"))
        .with_for_update(read=True, of=post)
    )
    comment = models.Comment
    core_insert = insert(comment).returning(
        comment.id, comment.created_at, comment.updated_at, comment.version
    )

    def event(comment_id: int, row: Any) -> list[Event]:
        return [Event(EventKind.COMMENT_ADDED, comment_id, row.id, row.author_id, True)]

    async def driver(post_id: int) -> None:
        async with pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(SELECT_SQL, post_id, member)
            added = await connection.fetchrow(INSERT_SQL, post_id, member, _body(post_id))
            kinds, rows = ["comment_added"], [added["id"]]
            await connection.fetchrow(
                outbox.WRITE_POSTGRES_SQL,
                outbox.LOCK_KEY, kinds, rows, [row["id"]], [row["author_id"]], [True], CHANNEL,
            )  # fmt: skip

    async def session_core(post_id: int) -> None:
        async with sessions() as session:
            row = (await session.execute(checked, {"post": post_id, "viewer": member})).one()
            values = {"post_id": post_id, "author_id": member, "body": _body(post_id)}
            added = (await session.execute(core_insert, values)).one()
            await outbox.write_postgres(session, CHANNEL, event(added.id, row))
            await session.commit()

    async def session_orm(post_id: int) -> None:
        async with sessions() as session:
            row = (await session.execute(checked, {"post": post_id, "viewer": member})).one()
            added = comment(post_id=post_id, author_id=member, body=_body(post_id))
            session.add(added)
            await session.flush()
            await outbox.write_postgres(session, CHANNEL, event(added.id, row))
            await session.commit()

    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    bodies = {
        post_id: instructions.bodies("W4", 1, 0, [post_id])[0] for post_id in published[:2000]
    }
    typename = b'{"query":"{ __typename }"}'
    app = server.app

    async def inkwell(post_id: int) -> None:
        status, raw = await instructions.call(app, bodies[post_id], headers)
        assert status == 200 and b'"CommentPayload"' in raw, raw[:300]

    async def smallest(_post_id: int) -> None:
        status, raw = await instructions.call(app, typename, headers)
        assert status == 200 and b'"Query"' in raw, raw

    return {
        "driver": driver,
        "session, Core": session_core,
        "session, ORM (the rules' minimum)": session_orm,
        "Inkwell, W4": inkwell,
        "Inkwell, { __typename }": smallest,
    }


def _body(post_id: int) -> str:
    return f"peers-w4 comment on post {post_id}"  # the harness's marker (W4_MARKER_WHERE)


async def measure(
    args: argparse.Namespace, token: str, published: list[int]
) -> dict[str, list[float]]:
    """CPU µs per write of each variant, per round."""
    os.environ.update(peers.ENVIRONMENT)  # the server's, as peers.main starts it
    import server

    connection = await asyncpg.connect(peers.DSN)
    try:
        member = int(await connection.fetchval(peers.MEMBER_SQL))
    finally:
        await connection.close()
    found: dict[str, list[float]] = {}
    async with server.app.router.lifespan_context(server.app), AsyncExitStack() as resources:
        writes = await variants(member, token, published, resources)
        posts = published[:2000]
        for write in writes.values():  # warm-up: caches, prepared statements, the pool
            for post_id in posts[:100]:
                await write(post_id)
        for _ in range(args.rounds):
            for name, write in writes.items():
                started = time.process_time()
                for n in range(args.writes):
                    await write(posts[n % len(posts)])
                spent = time.process_time() - started
                found.setdefault(name, []).append(spent / args.writes * 1e6)
            await instructions.forget_comments()
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    tokens, _max_post, published = instructions.prepare(ROOT)  # before the loop: it runs one
    found = asyncio.run(measure(args, tokens["W4"], published), loop_factory=uvloop.new_event_loop)
    print(f"CPU per write, median of {args.rounds} rounds of {args.writes}, in one process:\n")
    print("| variant | CPU µs per write | ceiling, req/s on one core |")
    print("|---|---:|---:|")
    for name, rounds in found.items():
        cpu = statistics.median(rounds)
        print(f"| {name} | {cpu:,.0f} | {1e6 / cpu:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
