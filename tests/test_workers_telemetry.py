"""Logs and metrics of a real ``serve`` with two worker processes on PostgreSQL: every log
line JSON from the parent and both workers, one line per operation; ``/metrics`` adding up
every worker's requests, each live worker's runtime figures, and no series of a killed
worker; the metrics directory gone when ``serve`` ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_SECRET
from tests.live import SERVER, free_port, wait_healthy

NAMED = "query Posts { posts(first: 2) { nodes { title } } }"
BROKEN = "query Broken { posts(first: 1) { nope } }"


class Served:
    """``python server.py serve`` in a process of its own, its standard error read as it comes
    (the log: one JSON object per line)."""

    def __init__(self, cwd: Path, port: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self) -> list[dict[str, Any]]:
        """Every line so far, each parsed as JSON (fails on one that is not)."""
        return [json.loads(line) for line in list(self.lines)]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


@pytest.fixture
def served(
    write_db_url: str, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Served, str, Path]]:
    if write_db_url.startswith("sqlite"):
        pytest.skip("several workers serve PostgreSQL only (SQLite serves with one)")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": write_db_url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": TEST_SECRET,
        "WORKERS": "2",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "METRICS_SAMPLE_SECONDS": "1",
        "TMPDIR": str(scratch),  # where serve keeps its folder (the metrics directory)
    }
    server = Served(tmp_path, port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, seconds=90)
        yield server, base, scratch
    finally:
        if server.process.poll() is None:
            server.stop()


def send(base: str, index: int) -> str:
    """One request on a connection of its own (so either worker may take it); returns the
    request id it was sent with. Every third one fails validation."""
    query = BROKEN if index % 3 == 0 else NAMED
    request_id = f"req-{index}"
    response = httpx.post(
        f"{base}/graphql", json={"query": query}, headers={"x-request-id": request_id}
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == request_id
    return request_id


def scrape(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``/metrics`` as {sample name: [(labels, value)]}."""
    text = httpx.get(f"{base}/metrics").text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def pids(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str) -> set[int]:
    return {int(labels["pid"]) for labels, _ in metrics.get(name, [])}


def test_two_workers_log_alike_and_their_metrics_add_up_without_the_dead(
    served: tuple[Served, str, Path],
) -> None:
    server, base, scratch = served
    wait_for_workers(base, 2)
    sent: list[str] = []
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Until both workers have served some (the kernel hands connections to either).
        while len(sent) < 30 or len(operation_pids(server)) < 2:
            assert time.monotonic() < deadline, "one worker took every connection"
            sent += pool.map(send, [base] * 10, range(len(sent), len(sent) + 10))
            time.sleep(0.2)  # the workers write their lines
    broken = sum(1 for rid in sent if int(rid.split("-")[1]) % 3 == 0)

    metrics = scrape(base)
    requests = metrics["inkwell_graphql_requests_total"]
    assert sum(value for _, value in requests) == len(sent)
    by_labels = {(s["type"], s["name"], s["outcome"]): value for s, value in requests}
    assert by_labels[("query", "Posts", "ok")] == len(sent) - broken
    # Never executed, so its name is not one of the labels: bounded cardinality.
    assert by_labels[("query", "other", "client_error")] == broken
    workers = pids(metrics, "inkwell_process_resident_memory_bytes")
    assert len(workers) == 2 and workers == operation_pids(server)
    assert pids(metrics, "inkwell_process_cpu_seconds") == workers
    assert pids(metrics, "inkwell_db_pool_size") == workers
    assert all(value == 20 for _, value in metrics["inkwell_db_pool_size"])
    assert pids(metrics, "inkwell_event_listener_connected") == workers

    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    metrics = wait_for_workers(base, 2, without=killed)  # uvicorn starts one in its place
    for name, samples in metrics.items():
        assert all(labels.get("pid") != str(killed) for labels, _ in samples), name
    # A dead worker's counts stay in the totals, which never go back.
    assert sum(value for _, value in metrics["inkwell_graphql_requests_total"]) == len(sent)

    assert server.stop() == 0
    lines = server.logged()  # every line, from the parent and every worker, is JSON
    assert len({line["pid"] for line in lines}) >= 4  # the parent, two workers, the new one
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    operations = [line for line in lines if line["logger"] == "inkwell.operation"]
    assert sorted(line["request_id"] for line in operations) == sorted(sent)
    for line in operations:
        failed = int(line["request_id"].split("-")[1]) % 3 == 0
        assert line["operation_name"] == ("Broken" if failed else "Posts")
        assert line["error_codes"] == (["GRAPHQL_VALIDATION_FAILED"] if failed else [])
        assert line["status"] == 200 and line["duration_ms"] > 0
        assert line["sql_statements"] == (0 if failed else 1)
    assert not list(scratch.glob("inkwell-serve-*"))  # the metrics directory with it


def wait_for_workers(
    base: str, count: int, without: int | None = None
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Scrape until ``count`` workers report their runtime figures (each samples them as it
    starts), none of them ``without``; returns that scrape."""
    deadline = time.monotonic() + 90
    while True:
        metrics = scrape(base)
        now = pids(metrics, "inkwell_process_resident_memory_bytes")
        if len(now) == count and without not in now:
            return metrics
        assert time.monotonic() < deadline, f"workers reporting: {now}"
        time.sleep(0.5)


def operation_pids(server: Served) -> set[int]:
    return {line["pid"] for line in server.logged() if line["logger"] == "inkwell.operation"}
