"""A real server process for tests that need real HTTP: uvicorn in a subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

SERVER = Path(__file__).resolve().parent.parent / "server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
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
def live_server(**env: str) -> Iterator[str]:
    """Run ``uvicorn server:app`` with ``env`` (settings as environment variables) and yield
    its base URL; the database must already be migrated."""
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
        env={**os.environ, **env},
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
        output, _ = process.communicate(timeout=20)
        if "Traceback" in output:
            print(output)  # shown by pytest when the test fails
