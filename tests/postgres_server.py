"""A throwaway PostgreSQL server of the test's own, from the machine's PostgreSQL binaries
(``initdb`` in a temporary directory, on a free port), that a test may stop and start."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.databases import REQUIRE_POSTGRES
from tests.live import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in ``data``, served on 127.0.0.1:``port``."""

    bin: Path
    data: Path
    port: int
    #: PostgreSQL refuses to run as root: then every command runs as this user.
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.data / "server.log")
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Initialise and start a cluster in a new temporary directory (its own: pytest's are
    private to root, and PostgreSQL runs as ``postgres`` when we are root); stop it and
    remove the directory on exit. Skips where no PostgreSQL binaries are installed, unless
    ``INKWELL_REQUIRE_POSTGRES=1`` (then it fails)."""
    binaries = _binaries()
    if binaries is None:
        if REQUIRE_POSTGRES:
            pytest.fail("INKWELL_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries (initdb)")
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    run_as = "postgres" if os.geteuid() == 0 else None
    tmp = Path(tempfile.mkdtemp(prefix="inkwell-pg-"))
    data = tmp / "pgdata"
    data.mkdir()
    if run_as:
        shutil.chown(tmp, run_as)
        shutil.chown(data, run_as)
    server = PostgresServer(binaries, data, free_port(), run_as)
    server._run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
