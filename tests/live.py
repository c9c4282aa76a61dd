"""A real server process for tests that need real HTTP: uvicorn in a subprocess on a free port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.auth.tokens import issue_token
from settings import Settings

SERVER = Path(__file__).resolve().parent.parent / "server.py"


#: Ports ``free_port`` handed out, each still bound by this process, with when it was bound.
_reserved: list[tuple[float, socket.socket]] = []
#: How long a handed-out port stays reserved: past ``wait_healthy``'s wait for the server.
RESERVE_SECONDS = 60


def free_port() -> int:
    """A loopback port for a server this process is about to start (uvicorn, PostgreSQL).

    The port stays bound here (SO_REUSEADDR, never listening) for ``RESERVE_SECONDS``, so the
    kernel gives it to nobody else meanwhile: not to another xdist worker asking for a free
    port, nor to an outgoing connection. The server can still take it, as it binds with
    SO_REUSEADDR too (uvicorn and PostgreSQL do) and is the only one to listen on it.
    Releasing the port at once would let a parallel worker be handed the same port before
    the server had bound it, and then talk to the other worker's server."""
    now = time.monotonic()
    while _reserved and now - _reserved[0][0] > RESERVE_SECONDS:
        _reserved.pop(0)[1].close()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _reserved.append((now, sock))
    return int(sock.getsockname()[1])


def wait_healthy(base: str, seconds: float = 30) -> None:
    """Poll ``/healthz`` until it answers 200; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server at {base} did not start")


@contextmanager
def serve_command(cwd: Path = SERVER.parent, **env: str) -> Iterator[str]:
    """Run ``server.py serve`` (the production entry point, with its checks and workers) in
    ``cwd`` with ``env`` added to this process's environment, on a free port; yield its base
    URL once ``/healthz`` answers, and stop it with SIGTERM on exit. Its output is dropped:
    a test of what ``serve`` prints reads the process itself (``tests/test_serve.py``)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "serve", "--port", str(port)],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def graphql_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a GraphQL response, asserting its status: 200, or 401 with a Bearer
    challenge when (and only when) the credentials were refused."""
    body: dict[str, Any] = response.json()
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    if body.get("data") is None and "UNAUTHENTICATED" in codes:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    else:
        assert response.status_code == 200, response.text
    return body


@contextmanager
def live_server(output: list[str] | None = None, **env: str) -> Iterator[str]:
    """Run ``uvicorn server:app`` with ``env`` (settings as environment variables) and yield
    its base URL; the database must already be migrated. The server's log is appended to
    ``output`` when it has stopped."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "server:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=SERVER.parent,
        # The app's own lines at WARNING too, as uvicorn's: the log is read at the end only,
        # and a line per request would fill the pipe and stall a busy server.
        env={**os.environ, "LOG_LEVEL": "warning", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        yield base
    finally:
        process.terminate()
        log, _ = process.communicate(timeout=20)
        if output is not None:
            output.append(log)
        if "Traceback" in log:
            print(log)  # shown by pytest when the test fails


@dataclass
class Live:
    """A server process over its own database, and an engine to check the tables with."""

    base: str
    url: str
    engine: AsyncEngine
    #: The JWT_SECRET the server runs with.
    secret: str

    def token(self, user_id: int) -> str:
        """A fresh access token for ``user_id``, valid on this server."""
        return issue_token(Settings(database_url=self.url, jwt_secret=self.secret), user_id).token

    def headers(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def all_at_once(
        self, requests: list[tuple[str, dict[str, Any], int | None]]
    ) -> list[dict[str, Any]]:
        """Send every (query, variables, user) request concurrently, each on its own
        connection; return the JSON bodies in order, asserting each was HTTP 200."""
        limits = httpx.Limits(max_connections=len(requests))
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/graphql",
                        json={"query": query, "variables": variables},
                        headers=self.headers(user) if user is not None else None,
                    )
                    for query, variables, user in requests
                )
            )
        assert [r.status_code for r in responses] == [200] * len(requests)
        return [r.json() for r in responses]
