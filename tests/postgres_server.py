"""A throwaway PostgreSQL server of the test's own, from the machine's PostgreSQL binaries
(``initdb`` in a temporary directory, on a free port), that a test may stop and start; and a
primary with a streaming replica (``pg_basebackup -R``), for the read replica tests."""

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
    #: Server settings given on the command line (``-c name=value ...``).
    options: str = ""

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} {self.options}"
        log = str(self.data / "server.log")
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url_of(self, database: str) -> str:
        """The URL of ``database`` on this server."""
        return self.url.rsplit("/", 1)[0] + f"/{database}"


#: A small, fast cluster that streams its WAL to a replica (hot_standby is on by default, and
#: a replica made from it has it too). fsync off: the data is thrown away.
PAIR_OPTIONS = (
    "-c wal_level=replica -c max_wal_senders=4 -c fsync=off -c full_page_writes=off "
    "-c shared_buffers=16MB -c max_connections=60 -c wal_receiver_status_interval=1"
)


def _binaries_or_skip() -> Path:
    binaries = _binaries()
    if binaries is None:
        if REQUIRE_POSTGRES:
            pytest.fail("INKWELL_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries (initdb)")
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    return binaries


def _directory(tmp: Path, name: str, run_as: str | None) -> Path:
    data = tmp / name
    data.mkdir(mode=0o700)
    if run_as:
        shutil.chown(data, run_as)
    return data


@contextmanager
def postgres_server(options: str = "") -> Iterator[PostgresServer]:
    """Initialise and start a cluster in a new temporary directory (its own: pytest's are
    private to root, and PostgreSQL runs as ``postgres`` when we are root); stop it and
    remove the directory on exit. Skips where no PostgreSQL binaries are installed, unless
    ``INKWELL_REQUIRE_POSTGRES=1`` (then it fails)."""
    binaries = _binaries_or_skip()
    run_as = "postgres" if os.geteuid() == 0 else None
    tmp = Path(tempfile.mkdtemp(prefix="inkwell-pg-"))
    if run_as:
        shutil.chown(tmp, run_as)
    data = _directory(tmp, "pgdata", run_as)
    server = PostgresServer(binaries, data, free_port(), run_as, options)
    server._run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def streaming_pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """A primary (``postgres_server`` with ``PAIR_OPTIONS``) and a hot standby streaming from
    it, made with ``pg_basebackup -R`` (which writes ``standby.signal`` and the
    ``primary_conninfo``) into a directory beside it, on a port of its own; both stopped and
    removed on exit. Fails (never skips) when ``INKWELL_REQUIRE_POSTGRES=1`` and the pair
    cannot be made."""
    with postgres_server(PAIR_OPTIONS) as primary:
        tmp = primary.data.parent
        data = _directory(tmp, "replica", primary.run_as)
        replica = PostgresServer(primary.bin, data, free_port(), primary.run_as, PAIR_OPTIONS)
        basebackup = str(primary.bin / "pg_basebackup")
        primary._run(
            basebackup, "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(data), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        replica.start()
        try:
            yield primary, replica
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
                replica.stop("immediate")
