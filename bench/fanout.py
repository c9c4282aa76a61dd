"""Benchmark of subscription fan-out: commit-to-delivery latency with many subscribers.

Method
------
1. Database as in ``bench/run.py`` (created if missing; unless ``--skip-seed``, migrated and
   seeded with ``--users`` users).
2. One uvicorn server (``ENVIRONMENT=production``, pinned to CPU 0). A member signs in and
   publishes a post.
3. This process (pinned to CPU 1) opens ``--subscribers`` WebSocket connections
   (graphql-transport-ws, the ``websockets`` library), each subscribing to
   ``commentAdded(postId)`` with nested fields (``id body author { name }``): every event is
   resolved by every subscriber, in a unit of work of its own, as in production. It waits
   until the server's ``/metrics`` counts them all.
4. ``--events`` times: send ``addComment`` over HTTP, then wait until every subscriber has
   received that comment (or ``--event-timeout`` passes) before the next one, so each event's
   latencies are its own, not a backlog's.
5. Latency of one delivery = the moment a subscriber's message is read here minus the moment
   the mutation was sent. That is an upper bound on commit-to-delivery: it includes the
   mutation's own work before its COMMIT (its round trip is reported beside it). Percentiles
   are nearest-rank over all deliveries. Lost = expected deliveries that never came;
   duplicates and out-of-order deliveries are counted too. The server's peak RSS (VmHWM)
   is read from /proc at the end.

With ``--load``, the same fan-out on a multi-worker ``serve`` saturated by HTTP reads and
open-loop writes instead (``bench/fanout_load.py`` says how it measures).

Run ``python bench/fanout.py --help`` for the flags; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from run import (  # bench/run.py: the same database, server and sign-in helpers
    DEFAULT_URL,
    HOST,
    LOAD_CPU,
    ROOT,
    database_facts,
    ensure_database,
    log,
    number,
    percentile,
    post_graphql,
    running,
    seed_database,
    sign_in,
    start_server,
    versions,
    writer_accounts,
)
from websockets.asyncio.client import ClientConnection, connect

SUBSCRIPTION = "subscription S($p: ID!) { commentAdded(postId: $p) { id body author { name } } }"
PUBLISH = (
    'mutation P { createPost(input: {title: "Fan-out", publish: true}) { __typename '
    "... on PostPayload { post { id } } } }"
)
COMMENT = (
    "mutation C($i: AddCommentInput!) { addComment(input: $i) { __typename "
    "... on CommentPayload { comment { id } } } }"
)


@dataclass
class Subscriber:
    """One connection's deliveries: event number -> the times it was read (more than one
    is a duplicate)."""

    connection: ClientConnection
    received: dict[int, list[float]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)


@dataclass
class Run:
    sent: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)


def graphql(port: int, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return post_graphql(port, body, 30, {"Authorization": f"Bearer {token}"})


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def listen(subscriber: Subscriber, arrived: asyncio.Queue[int]) -> None:
    async for raw in subscriber.connection:
        message = json.loads(raw)
        if message.get("type") == "ping":
            await subscriber.connection.send('{"type": "pong"}')
            continue
        if message.get("type") != "next":
            continue
        now = time.perf_counter()
        n = int(message["payload"]["data"]["commentAdded"]["body"].split()[-1])
        subscriber.received.setdefault(n, []).append(now)
        subscriber.order.append(n)
        arrived.put_nowait(n)


async def subscribe_all(port: int, post_id: str, count: int) -> list[Subscriber]:
    async def one() -> Subscriber:
        connection = await connect(
            f"ws://{HOST}:{port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            proxy=None,
            max_queue=None,
            open_timeout=60,
        )
        await connection.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await connection.recv())
        assert ack["type"] == "connection_ack", ack
        payload = {"query": SUBSCRIPTION, "variables": {"p": post_id}}
        await connection.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return Subscriber(connection)

    subscribers: list[Subscriber] = []
    for start in range(0, count, 100):  # in batches: no SYN flood on the listen backlog
        batch = min(100, count - start)
        subscribers += await asyncio.gather(*(one() for _ in range(batch)))
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(metric, port, "inkwell_subscriptions_active") < count:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not register every subscription within 120 s")
        await asyncio.sleep(0.1)
    return subscribers


async def fan_out(args: argparse.Namespace, port: int, token: str) -> tuple[Run, list[Subscriber]]:
    published = await asyncio.to_thread(graphql, port, PUBLISH, {}, token)
    post_id = published["data"]["createPost"]["post"]["id"]
    subscribers = await subscribe_all(port, post_id, args.subscribers)
    arrived: asyncio.Queue[int] = asyncio.Queue()
    listeners = [asyncio.create_task(listen(s, arrived)) for s in subscribers]
    run = Run()
    for n in range(args.events):
        variables = {"i": {"postId": post_id, "body": f"Event {n}"}}
        run.sent.append(time.perf_counter())
        answer = await asyncio.to_thread(graphql, port, COMMENT, variables, token)
        run.round_trips.append(time.perf_counter() - run.sent[-1])
        if (answer.get("data") or {}).get("addComment", {}).get("__typename") != "CommentPayload":
            raise SystemExit(f"addComment failed: {json.dumps(answer)[:300]}")
        waiting, deadline = args.subscribers, time.monotonic() + args.event_timeout
        while waiting:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    if await arrived.get() == n:
                        waiting -= 1
            except TimeoutError:
                log(f"event {n}: {waiting} subscribers still waiting after {args.event_timeout} s")
                break
    await asyncio.sleep(0.5)  # let late duplicates show up
    for task in listeners:
        task.cancel()
    await asyncio.gather(*(s.connection.close() for s in subscribers), return_exceptions=True)
    return run, subscribers


def report(args: argparse.Namespace, run: Run, subscribers: list[Subscriber], rss: float) -> str:
    latencies, spreads = [], []
    lost = duplicates = out_of_order = 0
    for n, sent in enumerate(run.sent):
        times = [s.received[n][0] for s in subscribers if n in s.received]
        lost += len(subscribers) - len(times)
        latencies += [(t - sent) * 1000 for t in times]
        if times:
            spreads.append((max(times) - min(times)) * 1000)
    for s in subscribers:
        duplicates += sum(len(t) - 1 for t in s.received.values())
        out_of_order += sum(1 for a, b in zip(s.order, s.order[1:], strict=False) if b < a)
    latencies.sort()
    spreads.sort()
    trips = sorted(t * 1000 for t in run.round_trips)
    db_version = asyncio.run(database_facts(args.database_url)).version
    rows = [
        ("send → delivery p50 (ms)", number(percentile(latencies, 50))),
        ("send → delivery p99 (ms)", number(percentile(latencies, 99))),
        ("send → delivery max (ms)", number(latencies[-1] if latencies else float("nan"))),
        ("first → last delivery of one event, p50 (ms)", number(percentile(spreads, 50))),
        ("addComment round trip p50 (ms)", number(percentile(trips, 50))),
        ("deliveries", f"{len(latencies):,} of {len(subscribers) * len(run.sent):,}"),
        ("lost / duplicated / out of order", f"{lost} / {duplicates} / {out_of_order}"),
        ("server peak RSS (MB)", number(rss)),
    ]
    lines = [
        f"# Subscription fan-out, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python bench/fanout.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"{args.subscribers:,} subscribers on one server process, {args.events} events, "
        f"database {args.database_url.split('@')[-1]}.",
        "",
        "| measure | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        f"Versions: {versions(db_version)}",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--users", type=int, default=200, help="seed size (default 200)")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--event-timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, help="default: bench/results/fanout-<UTC>.md")
    load = parser.add_argument_group("under load (--load)")
    load.add_argument("--load", action="store_true", help="fan out under HTTP load")
    load.add_argument("--workers", type=int, default=2)
    load.add_argument("--seconds", type=int, default=60, help="of load (default 60)")
    load.add_argument("--rate", type=float, default=10.0, help="addComment per second")
    load.add_argument("--connections", type=int, default=32, help="wrk's (default 32)")
    load.add_argument("--read", default="W2", help="the read query wrk sends (default W2)")
    load.add_argument("--grace", type=float, default=10.0, help="seconds for late deliveries")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Under --load the server's workers use every core, and so does the load: nothing pinned.
    if not args.load and hasattr(os, "sched_setaffinity") and LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CPU})
    asyncio.run(ensure_database(args.database_url))
    if not args.skip_seed:
        seed_database(args.database_url, args.users)
    out = args.out or ROOT / "bench" / "results" / f"fanout-{datetime.now(UTC):%Y%m%dT%H%M%S}.md"
    if args.load:
        from fanout_load import under_load

        text = under_load(args)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(text)
        return 0
    log_dir = out.with_suffix(".logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    server = start_server("fanout", args.database_url, "batched", False, log_dir)
    with running([server]):
        [(_, email)] = writer_accounts(args.database_url, 1)
        token = sign_in(server.port, email, 30)
        log(f"subscribing {args.subscribers} clients, then {args.events} events")
        run, subscribers = asyncio.run(fan_out(args, server.port, token))
        rss = peak_rss_mb(server.process.pid)
    text = report(args, run, subscribers, rss)
    out.write_text(text)
    print(text)
    log(f"wrote {out} (server log: {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
