"""Wall-clock throughput of two or more checkouts, interleaved: each one's req/s ÷ the first's.

For telling versions apart by a few per cent on a box whose speed drifts by more than that
between runs (``bench/peers.py`` measures each server once per round, minutes apart):

    python bench/ab.py --root ../before --root . --workloads W1,W3 --rounds 10
    python bench/ab.py --root . --root . --env 0:MAX_CONCURRENT_OPERATIONS=0

Method
------
Every ``--root`` (a checkout, e.g. a git worktree, run with this interpreter and its venv)
serves at once, as ``bench/peers.py`` starts Inkwell (``peers.ENVIRONMENT`` and
``peers.UVICORN_FLAGS``: one uvicorn worker, uvloop, httptools, the harness's ``bench``
database, ``SQL_STATS=false``; signed in as an admin), all pinned to CPU 0; only one is
loaded at a time, by ``wrk`` on CPU 1 (16 connections, one thread) with the
harness's request bodies (``workloads.request_body``; W3 a random post id per request; W4,
given in ``--workloads``, a comment by the harness's member on a random published post, the
comments deleted at the end as the harness deletes its own). Each
round runs every workload on every root for ``--warmup`` then ``--duration`` seconds, the
roots' order reversed every other round, so each measurement has its pair seconds away.
Before any load each root answers each workload once, checked as ``bench/instructions.py``
checks (``problem``); a run with a non-2xx answer or a socket error fails.

Reports, per workload, each root's median req/s and the median over rounds of its
req/s ÷ the first root's in the same round. Exits 0; 1 with the cause when a server does not
start or an answer is wrong. Needs wrk, taskset and the ``bench`` database (``python3
../shared/peers/seed.py --users 1000``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import instructions
import peers

LUA = """
local bodies = {%s}
local vary = %s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
function init(args) math.randomseed(42) end
function request()
  local body = bodies[1]
  if vary then body = bodies[math.random(#bodies)] end
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  io.write(string.format("non2xx %%d\\n", summary.errors.status))
end
"""


@dataclass(frozen=True)
class Harness:
    """What the workloads need of the harness's database (``instructions.prepare``): a token
    per workload (W4's the member's), the highest post id, the published posts' ids."""

    tokens: dict[str, str]
    max_post: int
    published: list[int]

    @classmethod
    def prepare(cls, root: Path) -> Harness:
        return cls(*instructions.prepare(root))

    def bodies(self, workload: str, count: int) -> list[bytes]:
        return instructions.bodies(workload, count, self.max_post, self.published)


def lua(workload: str, harness: Harness) -> str:
    """A wrk script sending ``workload``'s bodies (W3: one of 2,000 post ids at random; W4: a
    comment on one of 2,000 published posts at random)."""
    count = 2000 if workload in ("W3", "W4") else 1
    bodies = harness.bodies(workload, count)
    quoted = ",".join("[==[" + body.decode() + "]==]" for body in bodies)
    return LUA % (quoted, "true" if count > 1 else "false", harness.tokens[workload])


def serve(
    root: Path, port: int, log: Path, extra: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``root``'s server as ``bench/peers.py`` does, pinned to CPU 0, with ``extra``
    environment variables (``bench/tracing.py``'s variants)."""
    environment = {**os.environ, **peers.ENVIRONMENT, **(extra or {})}
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "uvicorn", "server:app",
        "--host", "127.0.0.1", "--port", str(port), *peers.UVICORN_FLAGS,
    ]  # fmt: skip
    output = log.open("wb")
    return subprocess.Popen(command, cwd=root, env=environment, stdout=output, stderr=output)


def answer(port: int, body: bytes, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ready(port: int, body: bytes, token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer(port, body, token)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server on port {port} did not start") from None
            time.sleep(0.3)


def wrk(port: int, script: Path, seconds: float) -> float:
    """req/s of one wrk run; raises SystemExit on errors."""
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds:g}s", "-s", str(script)]
    done = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/graphql"], capture_output=True, text=True
    )
    text = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if done.returncode != 0 or found is None or "Socket errors" in text:
        raise SystemExit(f"wrk failed on port {port}:\n{text}{done.stderr}")
    if (non2xx := re.search(r"non2xx (\d+)", text)) and int(non2xx.group(1)):
        raise SystemExit(f"{non2xx.group(1)} non-2xx answers on port {port}")
    return float(found.group(1))


#: Per (workload, server label): req/s of each round, in order.
Rates = dict[tuple[str, str], list[float]]


def scripts(names: Sequence[str], harness: Harness, folder: Path) -> dict[str, Path]:
    """The wrk script of each workload in ``names``, written in ``folder``."""
    found = {}
    for name in names:
        found[name] = folder / f"{name}.lua"
        found[name].write_text(lua(name, harness))
    return found


def check(ports: Mapping[str, int], names: Sequence[str], harness: Harness) -> None:
    """Wait for each server (``ports``: label -> port) and check its answer to each workload
    as ``bench/instructions.py`` does; raises SystemExit naming the first wrong one."""
    for label, port in ports.items():
        for name in names:
            body = harness.bodies(name, 1)[0]
            token = harness.tokens[name]
            ready(port, body, token)
            status, raw = answer(port, body, token)
            if (why := instructions.problem(name, body, status, raw)) is not None:
                raise SystemExit(f"{label}, {name}: {why}")


def interleave(
    ports: Mapping[str, int],
    workloads: Mapping[str, Path],
    rounds: int,
    warmup: float,
    duration: float,
) -> tuple[Rates, dict[str, float]]:
    """Load one server at a time with each workload's script (``workloads``), ``warmup``
    then ``duration`` seconds, for ``rounds`` rounds, the servers' order reversed every other
    round; prints each measurement. Returns the rates and, per label, the requests sent
    (estimated from wrk's rates, warm-ups included)."""
    rates: Rates = {}
    sent = dict.fromkeys(ports, 0.0)
    for round_ in range(rounds):
        order = list(ports.items())
        if round_ % 2:
            order.reverse()
        for name, script in workloads.items():
            for label, port in order:
                warm = wrk(port, script, warmup)
                rate = wrk(port, script, duration)
                rates.setdefault((name, label), []).append(rate)
                sent[label] += warm * warmup + rate * duration
                print(f"round {round_ + 1} {name} {label}: {rate:.1f} req/s", flush=True)
    return rates, sent


def ratio(rates: Rates, name: str, a: str, b: str) -> float:
    """The median over rounds of ``a``'s req/s ÷ ``b``'s in the same round, on ``name``."""
    return statistics.median(x / y for x, y in zip(rates[name, a], rates[name, b], strict=True))


def stop(servers: Sequence[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """SIGTERM each server, then wait for each (a lifespan's end may still flush work)."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=timeout)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", action="append", type=Path, required=True)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--base-port", type=int, default=8801)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="N:NAME=VALUE",
        help="a setting for the N-th --root only (from 0): one checkout under two settings",
    )
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in args.root]
    # Each root's label: its path, and its position when a path is given twice.
    labels = [
        str(root) if roots.count(root) == 1 else f"{root} #{i}" for i, root in enumerate(roots)
    ]
    names = args.workloads.split(",")
    harness = Harness.prepare(roots[0])
    folder = Path(tempfile.mkdtemp(prefix="inkwell-ab-"))
    workloads = scripts(names, harness, folder)
    settings: dict[int, dict[str, str]] = {}
    for given in args.env:
        index, _, setting = given.partition(":")
        name, _, value = setting.partition("=")
        settings.setdefault(int(index), {})[name] = value
    for index, extra in settings.items():
        labels[index] += " (" + ", ".join(f"{k}={v}" for k, v in extra.items()) + ")"
    ports = {label: args.base_port + i for i, label in enumerate(labels)}
    servers = [
        serve(root, port, folder / f"server-{port}.log", settings.get(i))
        for i, (root, port) in enumerate(zip(roots, ports.values(), strict=True))
    ]
    try:
        check(ports, names, harness)
        rates, _ = interleave(ports, workloads, args.rounds, args.warmup, args.duration)
    finally:
        stop(servers, timeout=30)
        if "W4" in names:
            asyncio.run(instructions.forget_comments())  # as the harness does after a run
    print(f"\nMedians of {args.rounds} rounds, {args.duration:g} s each, c=16:\n")
    print("| workload | " + " | ".join(labels) + " | ÷ the first, per round |")
    print("|---|" + "---:|" * (len(roots) + 1))
    for name in names:
        cells = [f"{statistics.median(rates[name, label]):.1f}" for label in labels]
        ratios = [ratio(rates, name, label, labels[0]) for label in labels[1:]]
        change = " / ".join(f"{r:.3f}" for r in ratios) or "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {change} |")
    index = {label: i for i, label in enumerate(labels)}
    print(
        json.dumps({f"{n} {index[label]}": v for (n, label), v in rates.items()}), file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
