"""``serve`` as an operator meets it: a real process, several workers, a real database;
what it checks before it starts, what it says, and its exit codes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.live import SERVER, free_port, wait_healthy
from tests.test_cli import run

PRODUCTION = {"ENVIRONMENT": "production", "JWT_SECRET": "Zq3-4vP0sL9mN2bX8cV7aQ1wE6rT5yU-kR7"}


@pytest.fixture
def postgres_url(fresh_db_url: str) -> str:
    if fresh_db_url.startswith("sqlite"):
        pytest.skip("several workers serve PostgreSQL only (SQLite serves with one)")
    return fresh_db_url


def serve(cwd: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SERVER), "serve", "--port", str(port)],
        cwd=cwd,
        env={**os.environ, **PRODUCTION, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    return process.returncode, out


def test_several_workers_start_five_times_in_a_row_without_a_death_or_an_error(
    tmp_path: Path, clean_env: None, postgres_url: str
) -> None:
    assert run("migrate", cwd=tmp_path, DATABASE_URL=postgres_url).returncode == 0
    for attempt in range(5):
        port = free_port()
        process = serve(tmp_path, port, DATABASE_URL=postgres_url, WORKERS="2")
        try:
            wait_healthy(f"http://127.0.0.1:{port}", seconds=60)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        finally:
            code, out = stop(process)
        assert code == 0, (attempt, out)
        assert "inkwell: 2 workers" in out and "inkwell: environment production" in out
        assert f"inkwell: GraphQL at http://127.0.0.1:{port}/graphql" in out
        assert "inkwell: GraphiQL off" in out
        for bad in ("died", "ERROR", "Traceback", "failed"):
            assert bad not in out, (attempt, out)


def test_an_unmigrated_database_is_refused_in_one_line_unless_asked_to_migrate(
    tmp_path: Path, clean_env: None, postgres_url: str
) -> None:
    # The form psql and managed databases hand out, with a password to keep off the screen.
    url = make_url(postgres_url).set(drivername="postgresql", password="hunter2")
    plain = url.render_as_string(hide_password=False)
    port = free_port()
    refused = run("serve", "--port", str(port), cwd=tmp_path, DATABASE_URL=plain, **PRODUCTION)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("inkwell: the database")
    assert (
        "revision none (empty)" in refused.stderr and "python server.py migrate" in refused.stderr
    )
    assert "hunter2" not in refused.stderr + refused.stdout
    process = serve(tmp_path, port, DATABASE_URL=plain, MIGRATE_ON_START="true", WORKERS="1")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", seconds=60)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    finally:
        code, out = stop(process)
    # One worker: uvicorn re-raises the SIGTERM it handled, so the process ends by it.
    assert code in (0, -signal.SIGTERM) and "hunter2" not in out


def test_an_address_in_use_is_named(tmp_path: Path, clean_env: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"inkwell: cannot listen on 127.0.0.1:{port}: address already in use\n"


def test_workers_that_cannot_start_make_serve_exit_1(
    tmp_path: Path, clean_env: None, postgres_url: str
) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text("{not json")
    assert run("migrate", cwd=tmp_path, DATABASE_URL=postgres_url).returncode == 0
    env = {"DATABASE_URL": postgres_url, "WORKERS": "2", "OPERATION_MANIFEST": str(manifest)}
    result = run("serve", "--port", str(free_port()), cwd=tmp_path, **PRODUCTION, **env)
    assert result.returncode == 1
    assert "inkwell: a worker could not start" in result.stderr
    assert "OPERATION_MANIFEST" in result.stderr


def test_sigterm_lets_a_request_in_flight_finish_and_takes_no_new_one(
    tmp_path: Path, clean_env: None, fresh_db_url: str
) -> None:
    # The README's rolling restart: SIGTERM closes the listening socket and drains.
    assert run("migrate", cwd=tmp_path, DATABASE_URL=fresh_db_url).returncode == 0
    port = free_port()
    process = serve(tmp_path, port, DATABASE_URL=fresh_db_url, WORKERS="1")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", seconds=60)
        body = b'{"query": "{ __typename }"}'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            # The request is in flight: its headers and half its body are sent.
            client.sendall(
                b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while True:  # the listening socket closes first: nobody new gets in
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    break
                assert time.monotonic() < deadline, "still accepting after SIGTERM"
                time.sleep(0.1)
            assert process.poll() is None  # still draining
            client.sendall(body[10:])
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b'"__typename"' in answer and b'"Query"' in answer
        assert b"connection: close" in answer.lower()
    finally:
        if process.poll() is None:
            code, out = stop(process)
        else:
            code, out = process.returncode, process.communicate()[0]
    assert code in (0, -signal.SIGTERM), out


@pytest.mark.parametrize("deflate", [None, "true"])
def test_websocket_compression_is_offered_only_when_asked_for(
    tmp_path: Path, clean_env: None, fresh_db_url: str, deflate: str | None
) -> None:
    """A client offering permessage-deflate (browsers, the websockets library) gets plain
    frames unless ``WS_PER_MESSAGE_DEFLATE=true``: each compressed connection holds about
    300 KB of zlib state in the worker."""
    from websockets.sync.client import connect

    assert run("migrate", cwd=tmp_path, DATABASE_URL=fresh_db_url).returncode == 0
    port = free_port()
    env = {"WS_PER_MESSAGE_DEFLATE": deflate} if deflate else {}
    process = serve(tmp_path, port, DATABASE_URL=fresh_db_url, WORKERS="1", **env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", seconds=60)
        url = f"ws://127.0.0.1:{port}/graphql"
        with connect(url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:  # type: ignore[list-item]
            offered = ws.request is not None and "permessage-deflate" in str(
                ws.request.headers.get("Sec-WebSocket-Extensions")
            )
            agreed = ws.response is not None and ws.response.headers.get("Sec-WebSocket-Extensions")
    finally:
        code, out = stop(process)
    assert offered
    if deflate:
        assert agreed and "permessage-deflate" in agreed
    else:
        assert agreed is None
    assert code in (0, -signal.SIGTERM), out
