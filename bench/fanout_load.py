"""Subscription fan-out under HTTP load: ``python bench/fanout.py --load`` (see fanout.py).

Method
------
1. The database of ``bench/run.py`` (``--users``, seeded unless ``--skip-seed``).
2. ``server.py serve`` with ``WORKERS`` worker processes (default 2), production settings.
3. ``--subscribers`` WebSocket connections (graphql-transport-ws), spread by the kernel over
   the workers, each following ``commentAdded`` on one post with nested fields; the bench
   waits until ``/metrics`` counts them all.
4. For ``--seconds``: wrk keeps ``--connections`` connections busy with a read query
   (``--read``, W2 by default: the server is saturated, every core busy), while this
   process sends ``addComment`` at ``--rate`` per second, open loop (it never waits for
   deliveries), each comment's body naming its number.
5. Then ``--grace`` seconds for the last deliveries. Lag of one delivery = when a subscriber
   read it minus when its mutation was sent (an upper bound on commit-to-delivery); the
   time after the mutation's answer came is reported too (a lower bound: it may be
   negative, the event racing the answer). Lost =
   deliveries that never came; duplicates and out-of-order ones are counted; every
   subscriber reads its socket all along, so the target is none lost. The server's own
   counters (gaps read back from the outbox, subscriptions ended) come from ``/metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from hostile import start_serve, stop
from run import (
    HOST,
    QUERIES,
    ROOT,
    database_facts,
    free_port,
    log,
    number,
    percentile,
    post_graphql,
    versions,
    writer_accounts,
)
from websockets.asyncio.client import connect

SUBSCRIPTION = "subscription S($p: ID!) { commentAdded(postId: $p) { id body author { name } } }"
PUBLISH = (
    'mutation P { createPost(input: {title: "Fan-out under load", publish: true}) { '
    "... on PostPayload { post { id } } } }"
)
COMMENT = (
    "mutation C($i: AddCommentInput!) { addComment(input: $i) { __typename "
    "... on CommentPayload { comment { id } } } }"
)
LOGIN = "mutation L($i: LoginInput!) { login(input: $i) { ... on AuthPayload { token } } }"


@dataclass
class Subscriber:
    received: dict[int, list[float]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def metrics(port: int) -> dict[str, float]:
    """The unlabelled samples of ``/metrics`` (summed over the workers by the server)."""
    found: dict[str, float] = {}
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                found[name] = found.get(name, 0.0) + float(value)
    return found


async def subscriber(port: int, post_id: str, sub: Subscriber, ready: asyncio.Event) -> None:
    async with connect(
        f"ws://{HOST}:{port}/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        proxy=None,
        max_queue=None,
        open_timeout=60,
    ) as connection:
        await connection.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await connection.recv())["type"] == "connection_ack"
        payload = {"query": SUBSCRIPTION, "variables": {"p": post_id}}
        await connection.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        ready.set()
        async for raw in connection:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await connection.send('{"type": "pong"}')
            elif kind == "next":
                data = message["payload"].get("data")
                if data is None:
                    sub.errors.append(json.dumps(message["payload"])[:200])
                    continue
                n = int(data["commentAdded"]["body"].split()[-1])
                sub.received.setdefault(n, []).append(time.perf_counter())
                # Commit order is the event ids' (sends overlap: not the bodies' numbers).
                sub.order.append(int(message["payload"]["extensions"]["eventId"]))
            elif kind in ("error", "complete"):
                sub.errors.append(json.dumps(message)[:200])
                return


def wrk_script(query: str, token: str) -> Path:
    body = json.dumps({"query": query, "variables": {}})
    script = Path(tempfile.mkdtemp(prefix="inkwell-fanout-")) / "read.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    return script


async def drive(args: argparse.Namespace, port: int, token: str) -> dict[str, Any]:
    def graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        return post_graphql(port, body, 60, {"Authorization": f"Bearer {token}"})

    post_id = (await asyncio.to_thread(graphql, PUBLISH, {}))["data"]["createPost"]["post"]["id"]
    subs = [Subscriber() for _ in range(args.subscribers)]
    readies = [asyncio.Event() for _ in subs]
    tasks = []
    for start in range(0, len(subs), 50):  # in batches: no SYN flood on the backlog
        for sub, ready in zip(subs[start : start + 50], readies[start : start + 50], strict=True):
            tasks.append(asyncio.create_task(subscriber(port, post_id, sub, ready)))
        await asyncio.gather(*(r.wait() for r in readies[start : start + 50]))
    deadline = time.monotonic() + 60
    while (await asyncio.to_thread(metrics, port)).get("inkwell_subscriptions_active", 0) < len(
        subs
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the server did not register every subscription within 60 s")
        await asyncio.sleep(0.2)
    before = await asyncio.to_thread(metrics, port)
    script = wrk_script(QUERIES[args.read], token)
    wrk = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "-s", str(script),
        f"http://{HOST}:{port}/graphql",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(1)  # the load first
    sent: dict[int, float] = {}
    committed: dict[int, float] = {}
    failures: list[str] = []
    http = httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )

    async def send(n: int) -> None:
        variables = {"i": {"postId": post_id, "body": f"Event {n}"}}
        sent[n] = time.perf_counter()
        try:
            response = await http.post("/graphql", json={"query": COMMENT, "variables": variables})
            answer = response.json()
        except Exception as exc:
            failures.append(repr(exc))
            return
        committed[n] = time.perf_counter()
        if (answer.get("data") or {}).get("addComment", {}).get("__typename") != "CommentPayload":
            failures.append(json.dumps(answer)[:200])

    writers = []
    start = time.perf_counter()
    events = int(args.rate * (args.seconds - 2))
    for n in range(events):
        await asyncio.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
        writers.append(asyncio.create_task(send(n)))
    await asyncio.gather(*writers)
    await http.aclose()
    out, _ = await wrk.communicate()
    await asyncio.sleep(args.grace)
    after = await asyncio.to_thread(metrics, port)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "sent": sent,
        "committed": committed,
        "failures": failures,
        "subs": subs,
        "wrk": out.decode(),
        "metrics": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after},
    }


def report(args: argparse.Namespace, found: dict[str, Any], rss: list[float]) -> str:
    sent: dict[int, float] = found["sent"]
    subs: list[Subscriber] = found["subs"]
    committed: dict[int, float] = found["committed"]
    latencies: list[float] = []
    after_commit: list[float] = []
    lost = duplicates = out_of_order = 0
    for sub in subs:
        for n, at in sent.items():
            times = sub.received.get(n)
            if not times:
                lost += 1
                continue
            latencies.append((times[0] - at) * 1000)
            if n in committed:  # negative when the event came before the mutation's answer
                after_commit.append((times[0] - committed[n]) * 1000)
            duplicates += len(times) - 1
        out_of_order += sum(1 for a, b in zip(sub.order, sub.order[1:], strict=False) if b < a)
    latencies.sort()
    after_commit.sort()
    trips = sorted((committed[n] - sent[n]) * 1000 for n in committed)
    for error in sorted({e for sub in subs for e in sub.errors})[:5]:
        log(f"a subscription ended: {error}")
    wrk_rate = next(
        (line.split()[1] for line in found["wrk"].splitlines() if line.startswith("Requests/sec")),
        "?",
    )
    gaps = found["metrics"].get("inkwell_subscription_gaps_total", 0.0)
    # The server's share of the lag: from the event reaching the worker to its result being
    # ready to send to each subscriber (its histogram, so bucket bounds, not percentiles).
    lag = "inkwell_subscription_event_lag_seconds"
    ready = found["metrics"].get(f"{lag}_count", 0.0)
    shares = [
        f"{found['metrics'].get(f'{lag}_bucket{{le="{le}"}}', 0.0) / ready:.1%} under {le} s"
        if ready
        else "-"
        for le in ("0.1", "0.25", "0.5", "1.0")
    ]
    rows = [
        ("read load (wrk, requests/s)", wrk_rate),
        ("events sent (addComment)", f"{len(sent):,} ({len(found['failures'])} failed)"),
        ("delivery lag p50 (ms)", number(percentile(latencies, 50))),
        ("delivery lag p99 (ms)", number(percentile(latencies, 99))),
        ("delivery lag max (ms)", number(latencies[-1] if latencies else float("nan"))),
        ("addComment round trip p50 / p99 (ms)", f"{number(percentile(trips, 50))} / "
         f"{number(percentile(trips, 99))}"),
        ("delivery after the mutation's answer p50 / p99 (ms)",
         f"{number(percentile(after_commit, 50))} / {number(percentile(after_commit, 99))}"),
        ("in the server (event reached the worker to result ready)", ", ".join(shares)),
        ("deliveries", f"{len(latencies):,} of {len(subs) * len(sent):,}"),
        ("lost / duplicated / out of order", f"{lost} / {duplicates} / {out_of_order}"),
        ("subscriptions ended by the server", str(sum(1 for s in subs if s.errors))),
        ("queue gaps read back from the outbox", number(gaps, 0)),
        ("workers' RSS at the end (MB)", " / ".join(number(r) for r in rss)),
    ]  # fmt: skip
    lines = [
        f"# Subscription fan-out under load, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `python bench/fanout.py {' '.join(sys.argv[1:])}`",
        "",
        f"{len(subs)} subscribers over {args.workers} workers, {args.rate} addComment/s for "
        f"about {args.seconds - 2} s while wrk sends {args.read} on {args.connections} "
        f"connections; database {args.database_url.split('@')[-1]}.",
        "",
        "| measure | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    return "\n".join(lines) + "\n"


def worker_rss(serve_pid: int) -> list[float]:
    """Resident memory (MB) of each of ``serve``'s uvicorn worker processes."""
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    sizes = []
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def under_load(args: argparse.Namespace) -> str:
    """Run the benchmark above; returns its report (markdown)."""
    log_dir = Path(tempfile.mkdtemp(prefix="inkwell-fanout-load-"))
    port = free_port()
    process = start_serve(ROOT, args.database_url, port, log_dir / "serve.log", args.workers)
    try:
        [(_, email)] = writer_accounts(args.database_url, 1)
        body = {"query": LOGIN, "variables": {"i": {"email": email, "password": "inkwell-demo"}}}
        token = post_graphql(port, json.dumps(body).encode(), 30)["data"]["login"]["token"]
        log(f"{args.subscribers} subscribers, then {args.seconds} s of load")
        found = asyncio.run(drive(args, port, token))
        rss = worker_rss(process.pid)
    finally:
        stop(process)
    db_version = asyncio.run(database_facts(args.database_url)).version
    return (
        report(args, found, rss) + f"\nVersions: {versions(db_version)}\n(serve log: {log_dir})\n"
    )
