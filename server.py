"""Inkwell's ASGI app factory and command line.

``uvicorn server:app`` serves the app built from environment settings;
``python server.py <serve|migrate|seed|export-schema>`` runs a command (``--help`` for each).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

import gc_tuning
from db import migrate, seed, stats
from db.engine import create_engine, create_sessionmaker
from db.read_sessions import ReadSessions
from schema import build_schema
from schema.auth import viewer_cache
from schema.live.postgres import broker_for
from schema.transport import graphiql
from schema.transport.body_limit import BodySizeLimit
from schema.transport.cors import cors_middleware
from schema.transport.csrf import CsrfProtection
from schema.transport.disconnect import CancelOnDisconnect
from schema.transport.view import GraphQLApp
from settings import Settings, get_settings

logger = logging.getLogger("inkwell")

SCHEMA_FILE = Path(__file__).resolve().parent / "schema.graphql"
#: SeedSize fields the seed command takes as flags (--posts-per-user ...).
SEED_FLAGS = ("users", "posts_per_user", "comments_per_post", "tags", "tags_per_post", "seed")
#: prometheus-client's multiprocess mode: where worker processes keep their metrics.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds /readyz waits for the database before answering 503.
READY_TIMEOUT = 2.0


def configured() -> Settings:
    """The environment's settings; invalid ones (a production server without a real
    JWT_SECRET, ``PORT=abc``) stop the process with exit code 2 and a message naming each
    problem, before anything starts."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])).upper() or 'settings'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        print(f"inkwell: invalid configuration:\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app: ``/graphql`` (POST, GET, GraphiQL, WebSocket), ``/healthz``,
    ``/readyz``, ``/metrics`` (Prometheus).

    The lifespan creates the engine, the session factory, the event broker and the viewer
    cache (which the broker's LISTEN connection keeps true) on start-up, and stops the broker
    and disposes the pool on shutdown. Source: Starlette docs, "Lifespan".
    """
    settings = settings or configured()
    try:
        schema = build_schema(settings)
    except ValueError as exc:  # an unreadable or malformed OPERATION_MANIFEST
        print(f"inkwell: invalid configuration:\n  OPERATION_MANIFEST: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    graphql = GraphQLApp(schema, settings)
    head = migrate.head_revision()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        if settings.sql_stats_enabled:
            # Only when reported: cursor events cost every statement a dispatch.
            stats.install(engine)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        # Query operations' sessions, used again once reset. On PostgreSQL their reads run on
        # the driver, on the session's connection (db.reader), and never begin a transaction.
        app.state.read_sessions = ReadSessions(app.state.sessionmaker, settings.db_pool_size)
        app.state.broker = broker = broker_for(settings.database_url)
        # Fed by the broker's LISTEN connection (PostgreSQL); never trusted in-process.
        app.state.viewers = viewers = viewer_cache.ViewerCache(settings.viewer_cache_seconds)
        broker.follow(viewer_cache.CHANNEL, viewers)
        await broker.start()
        try:
            with gc_tuning.tuned(settings.gc_thresholds):
                yield
        finally:
            await broker.stop()
            await engine.dispose()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        # Ready means: the database answers, and its schema is the one this code expects.
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                async with request.app.state.engine.connect() as conn:
                    revision = await migrate.current_revision(conn)
        except Exception as exc:  # any failure means "not ready"; the cause goes to the log
            logger.warning("readiness check failed: %r", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        if revision != head:
            logger.warning("database at revision %s, expected %s: run migrate", revision, head)
            return JSONResponse({"status": "not migrated"}, status_code=503)
        if not request.app.state.broker.listening:
            # Subscribers here would miss events until the LISTEN connection is back.
            return JSONResponse({"status": "events unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        # The process's Prometheus metrics (prometheus-client's default registry), or with
        # several workers every live worker's, from the multiprocess directory.
        if MULTIPROCESS_DIR in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            # Subscriptions (and any operation) over graphql-transport-ws or graphql-ws.
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            # GraphiQL's own files, and / -> /graphql (schema.transport.graphiql).
            *(graphiql.routes() if settings.graphiql_enabled else []),
        ],
        middleware=middleware(settings),
        lifespan=lifespan,
    )


def middleware(settings: Settings) -> list[Middleware]:
    """The HTTP middleware, outermost first: CORS (answers preflights itself), CSRF
    protection, the cap on request bodies, and cancelling the work of a client that left."""
    stack = []
    if (cors := cors_middleware(settings)) is not None:
        stack.append(cors)
    if settings.csrf_protection:
        stack.append(Middleware(CsrfProtection))
    stack.append(Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes))
    stack.append(Middleware(CancelOnDisconnect))
    return stack


def export_schema(settings: Settings) -> str:
    """The schema's SDL, as committed in ``schema.graphql``."""
    return build_schema(settings).as_str() + "\n"


async def prepare_embedded(settings: Settings) -> None:
    """Migrate the database and, in development, when it has no users, load the default demo
    data. Never in production: the demo accounts share a published password."""
    engine = create_engine(settings, serving=False)
    try:
        await migrate.upgrade(engine)
        if not settings.is_production and await seed.is_empty(engine):
            report = await seed.seed(engine, seed.SeedSize())
            logger.info("loaded demo data: %s", report)
    finally:
        await engine.dispose()


async def _migrate(settings: Settings, revision: str) -> None:
    engine = create_engine(settings, serving=False)
    try:
        await migrate.upgrade(engine, revision)
    finally:
        await engine.dispose()


async def _seed(settings: Settings, size: seed.SeedSize, replace: bool) -> seed.SeedReport:
    engine = create_engine(settings, serving=False)
    try:
        return await seed.seed(engine, size, replace=replace)
    finally:
        await engine.dispose()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="server.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the API (on SQLite: migrate, and seed an empty database, first)"
    )
    serve.add_argument("--host", help="default: HOST")
    serve.add_argument("--port", type=int, help="default: PORT")
    migrate_cmd = commands.add_parser("migrate", help="apply Alembic migrations")
    migrate_cmd.add_argument("--revision", default="head")
    seed_cmd = commands.add_parser("seed", help="load deterministic demo data")
    defaults = seed.SeedSize()
    for flag in SEED_FLAGS:
        seed_cmd.add_argument(
            "--" + flag.replace("_", "-"),
            type=int,
            default=getattr(defaults, flag),
            help=f"default: {getattr(defaults, flag)}",
        )
    seed_cmd.add_argument("--replace", action="store_true", help="delete existing data first")
    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", type=Path, default=SCHEMA_FILE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the process exit code."""
    args = _parser().parse_args(argv)
    settings = configured()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        import uvicorn

        if settings.is_sqlite:
            asyncio.run(prepare_embedded(settings))
        options: dict[str, Any] = {
            "host": args.host or settings.host,
            "port": args.port or settings.port,
            "log_level": settings.log_level,
            # uvicorn's fast event loop and HTTP parser (uvicorn[standard] installs both).
            "loop": "uvloop",
            "http": "httptools",
        }
        if settings.graphiql_enabled and not settings.is_production:
            print(
                graphiql.banner(
                    options["host"], options["port"], seed.ADMIN_EMAIL, seed.DEMO_PASSWORD
                )
            )
        workers = settings.serve_workers
        if workers == 1:
            uvicorn.run(create_app(settings), **options)
        else:
            # Each worker imports `server:app` itself; metrics are pooled across them.
            os.environ.setdefault(MULTIPROCESS_DIR, tempfile.mkdtemp(prefix="inkwell-metrics-"))
            logger.info("serving with %d worker processes", workers)
            uvicorn.run("server:app", workers=workers, **options)
    elif args.command == "migrate":
        asyncio.run(_migrate(settings, args.revision))
        print(f"migrated {settings.database_url.split('@')[-1]} to {args.revision}")
    elif args.command == "seed":
        size = seed.SeedSize(**{name: getattr(args, name) for name in SEED_FLAGS})
        try:
            report = asyncio.run(_seed(settings, size, args.replace))
        except seed.DatabaseNotEmpty as exc:
            print(f"seed: {exc}", file=sys.stderr)
            return 1
        print(
            f"seeded {report.users} users, {report.posts} posts, {report.comments} comments, "
            f"{report.tags} tags, {report.post_tags} post tags in {report.seconds:.1f} s"
        )
    elif args.command == "export-schema":
        args.output.write_text(export_schema(settings))
        print(f"wrote {args.output}")
    return 0


app = create_app()

if __name__ == "__main__":
    sys.exit(main())
