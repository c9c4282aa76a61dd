"""Slow clients cannot hold the server (issue 19): ``serve`` as a real process, spoken to over
real sockets. A body not sent whole in time is a 408 and a closed connection; connections
beyond ``MAX_CONNECTIONS`` get 503 while the held ones stay open; idle keep-alive
connections are closed; requests work as before afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.databases import throwaway_database
from tests.live import free_port, wait_healthy
from tests.test_cli import run
from tests.test_serve import serve, stop

BODY = b'{"query": "{ __typename }"}'
#: Seconds allowed past a deadline: a loaded 2-core machine schedules late.
SLACK = 3.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def port(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``serve`` (one worker) over a database of its own, with a short body deadline, a cap
    of 2 connections and a short keep-alive; yields its port. One per backend for the
    module: a start costs seconds."""
    folder = tmp_path_factory.mktemp("slow-clients")
    with asyncio.Runner() as runner:
        database = throwaway_database(backend, folder)
        url = runner.run(database.__aenter__())
        try:
            assert run("migrate", cwd=folder, DATABASE_URL=url).returncode == 0
            number = free_port()
            process = serve(
                folder,
                number,
                DATABASE_URL=url,
                WORKERS="1",
                BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
                MAX_CONNECTIONS="2",
                KEEP_ALIVE_TIMEOUT_SECONDS="1",
            )
            try:
                wait_healthy(f"http://127.0.0.1:{number}", seconds=60)
                yield number
            finally:
                code, out = stop(process)
            # uvicorn's single process ends by the signal, several workers' supervisor with 0.
            assert code in (0, -signal.SIGTERM), out
            assert "Traceback" not in out, out
        finally:
            runner.run(database.__aexit__(None, None, None))


def headers_and(port: int, body: bytes, *, length: int = len(BODY)) -> socket.socket:
    """A connection that has sent a POST's headers (declaring ``length`` body bytes) and
    ``body``."""
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    client.sendall(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
        + body
    )
    return client


def answer(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def head_and_body(client: socket.socket) -> tuple[bytes, bytes]:
    """One response on a kept-alive connection: its head and (Content-Length) body."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = client.recv(65536)
        assert chunk, received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += client.recv(65536)
    return head, body


def test_a_half_sent_body_is_a_408_and_a_closed_connection_within_the_deadline(
    port: int,
) -> None:
    for trickle in (False, True):
        started = time.monotonic()
        with headers_and(port, BODY[:10]) as client:
            if trickle:  # a byte now and then: each read is quick, the body never ends
                client.settimeout(0.3)
                for byte in BODY[10:-1]:
                    try:
                        client.sendall(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.2)
                    if time.monotonic() - started > BODY_TIMEOUT + SLACK:
                        break
                client.settimeout(30)
            received = answer(client)
        elapsed = time.monotonic() - started
        assert received.startswith(b"HTTP/1.1 408 "), received
        assert b"connection: close" in received.lower()
        error = json.loads(received.partition(b"\r\n\r\n")[2])["errors"][0]
        assert error["extensions"] == {"code": "BODY_TIMEOUT", "limit": BODY_TIMEOUT}
        assert BODY_TIMEOUT - 0.1 <= elapsed <= BODY_TIMEOUT + SLACK, (trickle, elapsed)
    # Nothing of it stays: the next request is served as usual.
    response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_connections_beyond_the_cap_get_503_while_the_held_ones_stay_open(
    port: int,
) -> None:
    held = [headers_and(port, BODY[:10]) for _ in range(2)]
    try:
        time.sleep(0.2)  # both are the server's, their requests waiting for their bodies
        for _ in range(3):
            with headers_and(port, BODY) as extra:
                received = answer(extra)
            assert received.startswith(b"HTTP/1.1 503 "), received
        for client in held:  # the held ones were never dropped: they finish as usual
            client.sendall(BODY[10:])
            head, body = head_and_body(client)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert json.loads(body) == {"data": {"__typename": "Query"}}
    finally:
        for client in held:
            client.close()
    time.sleep(0.2)  # the server notices the held ones closed
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(3):
            response = http.post("/graphql", json={"query": "{ __typename }"})
            assert response.json() == {"data": {"__typename": "Query"}}


def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    with headers_and(port, BODY) as client:
        head, _ = head_and_body(client)
        assert head.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert client.recv(65536) == b""  # closed by the server, idle past its keep-alive
        assert time.monotonic() - started <= 1 + SLACK
