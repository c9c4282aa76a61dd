"""Issue 19: what a hostile document costs the server before it is refused.

Two measurements, each over documents made unique per request (a counter in the operation
name), so no cache helps:

1. **CPU per refusal, in-process**: ``time.process_time()`` over ``--documents`` requests of
   each shape sent one after another through the real ASGI app (``server.create_app`` with
   production settings, its lifespan running), beside the cost of only parsing the same
   texts with graphql-core and of a small valid query, as the floor.
2. **``/healthz`` under attack**: a real ``server.py serve`` with ``WORKERS=2`` (production
   settings) on PostgreSQL; a load process keeps ``--in-flight`` hostile requests in flight
   (one keep-alive connection each, a new document per request) for ``--duration`` seconds
   while this process asks ``/healthz`` every 50 ms on a connection of its own and records
   how long each answer took (p50, p99, max). With ``--bursts``, the issue's own case: the
   load process sends ``--in-flight`` requests at once, waits for every answer, rests
   ``--rest`` seconds and sends the next burst, while ``/healthz`` is asked every 10 ms; the
   percentiles are over the probes sent while a burst was being answered.

Shapes: ``fan-out`` (1.2 KB, 31 fragments each spreading the next twice) and ``same-field``
(29 KB, one field 4,900 times). ``--root`` runs the code of another checkout (the servers
and the in-process app are imported from there), for a before/after comparison.

    .venv/bin/python bench/hostile.py
    .venv/bin/python bench/hostile.py --root /work/main --shapes fan-out --documents 20

It is a benchmark, not a test; it exits 1 only if a hostile request is not refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/inkwell_bench_hostile"
JWT_SECRET = "bench-hostile-" + "k" * 40


def fan_out(n: int) -> str:
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    return (
        f"query Q{n} {{ ...F0 }} {fragments} fragment F30 on Query {{ posts(first:1) "
        "{ totalCount } }"
    )


_TITLES = "title " * 4900


def same_field(n: int) -> str:
    return f'query Q{n} {{ post(id: "1") {{ {_TITLES}}} }}'


def valid(n: int) -> str:
    return f"query Q{n} {{ posts(first: 1) {{ totalCount }} }}"


SHAPES: dict[str, Callable[[int], str]] = {"fan-out": fan_out, "same-field": same_field}


def body_of(text: str) -> bytes:
    return json.dumps({"query": text}).encode()


# --- 1. CPU per refusal, in-process ----------------------------------------------------------


async def asgi_post(app: Any, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to ``/graphql`` through the ASGI ``app`` itself (no client library)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
        "state": {},
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # the request never disconnects
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def cpu_per_request(url: str, shapes: list[str], documents: int) -> dict[str, Any]:
    """Per shape: CPU ms per request through the app, and per parse alone (median of
    ``documents`` unique texts, and the mean)."""
    from graphql import parse

    from server import create_app
    from settings import Settings

    settings = Settings(database_url=url, environment="production", jwt_secret=JWT_SECRET)
    app = create_app(settings)
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        for name, make in [*((s, SHAPES[s]) for s in shapes), ("valid query", valid)]:
            start = 10_000_000 * (len(results) + 1)
            for n in range(start, start + 5):  # warm-up: imports, first-call costs
                await asgi_post(app, body_of(make(n)))
            times, codes = [], set()
            for n in range(start + 5, start + 5 + documents):
                payload = body_of(make(n))
                began = time.process_time()
                status, answer = await asgi_post(app, payload)
                times.append((time.process_time() - began) * 1000)
                errors = json.loads(answer).get("errors") or []
                codes.add(errors[0]["extensions"].get("code") if errors else f"HTTP {status}")
            parses = []
            for n in range(start + 5, start + 5 + documents):
                text = make(n)
                began = time.process_time()
                parse(text, max_tokens=settings.max_tokens)
                parses.append((time.process_time() - began) * 1000)
            results[name] = {
                "bytes": len(make(start).encode()),
                "ms median": statistics.median(times),
                "ms mean": statistics.fmean(times),
                "ms max": max(times),
                "parse ms median": statistics.median(parses),
                "answers": sorted(map(str, codes)),
            }
    return results


# --- 2. /healthz under attack ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_serve(
    root: Path, url: str, port: int, log: Path, workers: int = 2
) -> subprocess.Popen[bytes]:
    """``server.py serve`` of the checkout at ``root`` with ``workers`` production workers on
    ``port``, its output in ``log``, once ``/healthz`` answers (also ``fanout_load.py``)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": JWT_SECRET,
        "WORKERS": str(workers),
        "PORT": str(port),
        "HOST": HOST,
        "LOG_LEVEL": "warning",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "server.py", "serve"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    time.sleep(2)  # the second worker too
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError("serve did not answer /healthz within 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines[1:])}
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return int(lines[0].split()[1]), body


def request(path: str, body: bytes | None = None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def attack(port: int, shape: str, in_flight: int, seconds: float) -> dict[str, Any]:
    make = SHAPES[shape]
    counter = iter(range(20_000_000, 30_000_000))
    stop_at = time.monotonic() + seconds
    answered, failures, codes = 0, 0, set()

    async def loop() -> None:
        nonlocal answered, failures
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while time.monotonic() < stop_at:
                writer.write(request("/graphql", body_of(make(next(counter)))))
                status, body = await read_response(reader)
                errors = json.loads(body).get("errors") or [] if body else []
                code = errors[0]["extensions"].get("code") if errors else f"HTTP {status}"
                codes.add(code)
                answered += 1
        except (OSError, asyncio.IncompleteReadError):
            failures += 1
        finally:
            writer.close()

    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return {"answered": answered, "failures": failures, "codes": sorted(map(str, codes))}


async def bursts(port: int, shape: str, size: int, seconds: float, rest: float) -> dict[str, Any]:
    """``size`` requests sent at once on connections of their own, then the next burst
    ``rest`` seconds after the last answer, for ``seconds``: each burst's window
    (``time.monotonic()`` from its send to its last answer, the same clock in every process)."""
    make = SHAPES[shape]
    counter = iter(range(30_000_000, 40_000_000))
    connections = [await asyncio.open_connection(HOST, port) for _ in range(size)]
    windows: list[tuple[float, float]] = []
    answered, codes = 0, set()

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        writer.write(request("/graphql", body_of(make(next(counter)))))
        status, body = await read_response(reader)
        errors = json.loads(body).get("errors") or [] if body else []
        codes.add(errors[0]["extensions"].get("code") if errors else f"HTTP {status}")
        answered += 1

    stop_at = time.monotonic() + seconds
    try:
        while time.monotonic() < stop_at:
            began = time.monotonic()
            await asyncio.gather(*(one(r, w) for r, w in connections))
            windows.append((began, time.monotonic()))
            await asyncio.sleep(rest)
    finally:
        for _, writer in connections:
            writer.close()
    return {
        "answered": answered,
        "failures": 0,
        "codes": sorted(map(str, codes)),
        "windows": windows,
    }


def attack_process(
    port: int, shape: str, in_flight: int, seconds: float, rest: float | None, pipe: Any
) -> None:
    if rest is None:
        pipe.send(asyncio.run(attack(port, shape, in_flight, seconds)))
    else:
        pipe.send(asyncio.run(bursts(port, shape, in_flight, seconds, rest)))


async def probe(port: int, seconds: float, every: float = 0.05) -> list[tuple[float, float]]:
    """``/healthz`` every ``every`` seconds on one keep-alive connection: for each answer,
    when it was asked (``time.monotonic()``) and how long it took (milliseconds)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    latencies: list[tuple[float, float]] = []
    stop_at = time.monotonic() + seconds
    try:
        while time.monotonic() < stop_at:
            asked, began = time.monotonic(), time.perf_counter()
            writer.write(request("/healthz"))
            status, _ = await read_response(reader)
            latencies.append((asked, (time.perf_counter() - began) * 1000))
            assert status == 200, status
            await asyncio.sleep(every)
    finally:
        writer.close()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def healthz_under_attack(
    root: Path, url: str, shape: str, in_flight: int, seconds: float, rest: float | None = None
) -> dict[str, Any]:
    """``/healthz`` latencies while ``in_flight`` requests of ``shape`` are kept in flight
    (``rest=None``) or sent in bursts ``rest`` seconds apart; see the module's docstring."""
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-hostile-{shape}-{port}.log"
    process = start_serve(root, url, port, log)
    try:
        baseline = [ms for _, ms in asyncio.run(probe(port, 2))]
        here, there = multiprocessing.Pipe()
        attacker = multiprocessing.Process(
            target=attack_process, args=(port, shape, in_flight, seconds + 1, rest, there)
        )
        attacker.start()
        time.sleep(1)  # the attack under way
        probes = asyncio.run(probe(port, seconds - 1, 0.05 if rest is None else 0.01))
        result = here.recv()
        attacker.join()
    finally:
        stop(process)
    windows = result.pop("windows", None)
    if windows is None:
        latencies = [ms for _, ms in probes]
    else:
        latencies = [ms for asked, ms in probes if any(a <= asked <= b for a, b in windows)]
        result["bursts"] = len(windows)
        result["burst answered in ms, median"] = statistics.median(
            (b - a) * 1000 for a, b in windows
        )
    return {
        "healthz idle p99 ms": percentile(baseline, 99),
        "healthz probes": len(latencies),
        "healthz p50 ms": percentile(latencies, 50),
        "healthz p99 ms": percentile(latencies, 99),
        "healthz max ms": max(latencies),
        "refusals/s": result["answered"] / (seconds + 1),
        **result,
    }


def migrate(root: Path, url: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import ensure_database  # bench/run.py

    asyncio.run(ensure_database(url))
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "server.py", "migrate"]
    subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=60)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument(
        "--bursts",
        action="store_true",
        help="send --in-flight at once, again --rest s after the last answer (the issue's case)",
    )
    parser.add_argument("--rest", type=float, default=0.25)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()
    shapes = args.shapes.split(",")
    os.chdir(root)
    sys.path.insert(0, str(root))
    migrate(root, args.database_url)
    report: dict[str, Any] = {"root": str(root)}
    if not args.skip_cpu:
        report["cpu per request"] = asyncio.run(
            cpu_per_request(args.database_url, shapes, args.documents)
        )
    if not args.skip_serve:
        report["healthz under attack"] = {
            shape: healthz_under_attack(
                root,
                args.database_url,
                shape,
                args.in_flight,
                args.duration,
                args.rest if args.bursts else None,
            )
            for shape in shapes
        }
    print(json.dumps(report, indent=2))
    refused = all(
        "HTTP" not in " ".join(r["answers"])
        for name, r in report.get("cpu per request", {}).items()
        if name != "valid query"
    )
    return 0 if refused else 1


if __name__ == "__main__":
    sys.exit(main())
