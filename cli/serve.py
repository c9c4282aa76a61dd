"""``serve``: check what serving needs, say what is served, and run uvicorn.

Before any worker starts, in this process: the address can be listened on, the database
answers and is at the revision this code expects (``--migrate`` or ``MIGRATE_ON_START``
migrates it first; the embedded SQLite file always is, and gets demo data in development).
Each failure is one line naming what failed and how to fix it, and a non-zero exit. The
workers build the app themselves (``server:create_app`` as uvicorn's factory), after their
health-check thread is up, so a slow import never looks like a dead worker; a worker that
cannot start leaves a mark, and ``serve`` then exits 1 instead of uvicorn's 0.

Source: uvicorn docs, "Settings" (``factory``, ``workers``, ``timeout_worker_healthcheck``).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from db import migrate, seed
from db.engine import command_engine
from schema.telemetry import logs
from schema.telemetry.exposition import MULTIPROCESS_DIR
from schema.transport import graphiql
from settings import Settings

#: Where workers leave a mark when they cannot start (``startup_failed``).
FAILURE_MARK = "INKWELL_STARTUP_FAILURE_FILE"


logger = logging.getLogger("inkwell")


class CannotServe(Exception):
    """What stops ``serve`` before it starts, in one line for the operator."""


def add_parser(commands: Any) -> None:
    """Add ``serve`` to ``commands`` (argparse sub-parsers)."""
    command = commands.add_parser(
        "serve", help="serve the API (on SQLite: migrate, and seed an empty database, first)"
    )
    command.add_argument("--host", help="default: HOST")
    command.add_argument("--port", type=int, help="default: PORT")
    command.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations before serving (default: MIGRATE_ON_START; SQLite always)",
    )
    command.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until stopped; 0 after a requested stop, 1 when serving could not start."""
    import uvicorn

    host, port = args.host or settings.host, args.port or settings.port
    try:
        check_address(host, port)
        revision = asyncio.run(prepare(settings, migrate_first=args.migrate))
    except CannotServe as exc:
        print(f"inkwell: {exc}", file=sys.stderr)
        return 1
    workers = settings.serve_workers
    print(banner(settings, host, port, workers, revision), flush=True)
    if settings.graphiql_enabled and not settings.is_production:
        print(graphiql.banner(host, port, seed.ADMIN_EMAIL, seed.DEMO_PASSWORD), flush=True)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        # uvicorn's fast event loop and HTTP parser (uvicorn[standard] installs both).
        "loop": "uvloop",
        "http": "httptools",
        # Each worker builds the app itself, with its health-check thread already up; a
        # new worker imports this module first (multiprocessing's spawn), which takes
        # seconds: uvicorn's default 5 s then kills it as dead.
        "factory": True,
        "timeout_worker_healthcheck": settings.worker_healthcheck_timeout_seconds,
        # One log format in this process and every worker (schema.telemetry.logs); the
        # app's own line per operation replaces uvicorn's access log.
        "log_config": logs.config(settings),
        "access_log": False,
        # Slow or idle clients cannot hold a worker (issue 19). uvicorn counts the connection
        # a request arrives on among the open ones, so one more lets MAX_CONNECTIONS be served.
        # It has no header-read timeout: the reverse proxy's must bound that (README).
        "limit_concurrency": settings.max_connections + 1 if settings.max_connections else None,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        # Off unless asked for: each compressed connection holds zlib's state (about 300 KB,
        # allocated outside Python), which subscribers reconnecting churn (issue 19's soak).
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        # The client's address (rate limits) from X-Forwarded-For only through trusted hops.
        "proxy_headers": bool(proxies := trusted_proxies(settings)),
        "forwarded_allow_ips": proxies or None,
    }
    with tempfile.TemporaryDirectory(prefix="inkwell-serve-") as folder:
        mark = Path(folder) / "startup-failed"
        os.environ[FAILURE_MARK] = str(mark)
        if workers > 1 and MULTIPROCESS_DIR not in os.environ:
            # Metrics are pooled across the workers (prometheus-client's multiprocess mode),
            # in this run's folder, removed when it ends.
            (metrics := Path(folder) / "metrics").mkdir()
            os.environ[MULTIPROCESS_DIR] = str(metrics)
        try:
            uvicorn.run("server:served_app", workers=workers, **options)
        except SystemExit as exc:  # uvicorn's own start-up failure (one worker)
            return 1 if exc.code else 0
        if mark.exists():
            print(f"inkwell: a worker could not start: {mark.read_text().strip()}", file=sys.stderr)
            return 1
    return 0


def startup_failed(reason: str) -> None:
    """Leave the mark ``serve`` looks for after uvicorn returns (a worker's lifespan failed
    with ``reason``). Does nothing outside ``serve``."""
    path = os.environ.get(FAILURE_MARK)
    if path:
        Path(path).write_text(reason + "\n")


def check_address(host: str, port: int) -> None:
    """Raise ``CannotServe`` naming ``host:port`` when nothing can listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise CannotServe(f"cannot listen on {host}:{port}: {why}") from None


async def prepare(settings: Settings, *, migrate_first: bool) -> str | None:
    """Bring the database to where serving needs it; returns its revision. Raises
    ``CannotServe`` when it does not answer or is not migrated (and may not be)."""
    where = shown_url(settings.database_url)
    try:
        async with command_engine(settings) as engine:
            if settings.is_sqlite or migrate_first or settings.migrate_on_start:
                await migrate.upgrade(engine)
                demo = settings.is_sqlite and not settings.is_production
                if demo and await seed.is_empty(engine):
                    report = await seed.seed(engine, seed.SeedSize())
                    logger.info("loaded demo data: %s", report)
            with quiet("alembic"):
                async with engine.connect() as conn:
                    revision = await migrate.current_revision(conn)
    except Exception as exc:  # whatever the driver raises: the operator needs the cause
        raise CannotServe(f"cannot use the database at {where}: {one_line(exc)}") from None
    head = migrate.head_revision()
    if revision != head:
        raise CannotServe(
            f"the database at {where} is at revision {revision or 'none (empty)'}, this code "
            f"needs {head}: run `python server.py migrate` first, or serve with --migrate"
        )
    return revision


@contextmanager
def quiet(name: str) -> Iterator[None]:
    """Only warnings and errors from the logger ``name`` in the block (Alembic announces
    every revision check at INFO)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def banner(settings: Settings, host: str, port: int, workers: int, revision: str | None) -> str:
    """What ``serve`` prints before it starts, one line each."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return "\n".join(
        [
            f"inkwell: environment {settings.environment}",
            f"inkwell: database {shown_url(settings.database_url)} (revision {revision})",
            f"inkwell: {workers} worker{'s' if workers > 1 else ''}",
            f"inkwell: GraphQL at http://{shown}:{port}/graphql",
            f"inkwell: GraphiQL {'on' if settings.graphiql_enabled else 'off'}",
        ]
    )


def shown_url(url: str) -> str:
    """``url`` with its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def trusted_proxies(settings: Settings) -> list[str]:
    """The reverse proxies whose forwarded headers ``serve`` believes: ``TRUSTED_PROXIES``;
    when that is not set but uvicorn's own ``FORWARDED_ALLOW_IPS`` is (what ``serve`` read
    before ``TRUSTED_PROXIES`` existed), that one, so an upgrade behind a proxy does not
    count every client as the proxy's address (and throttle the whole site's sign-ins)."""
    legacy = os.environ.get("FORWARDED_ALLOW_IPS")
    if "trusted_proxies" in settings.model_fields_set or not legacy:
        return list(settings.trusted_proxies)
    return [host.strip() for host in legacy.split(",") if host.strip()]
