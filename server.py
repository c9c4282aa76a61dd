"""Inkwell's ASGI app factory and entry point.

``uvicorn server:app`` (or ``uvicorn --factory server:create_app``) serves the app built from
environment settings; ``python server.py <command>`` runs a command of ``cli`` (``--help``).
The module-level ``app`` is built on first use, not at import, so importing this module (for
``--help``, say) reads no settings and builds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from uvicorn.config import STARTUP_FAILURE

import cli
import gc_tuning
from cli.configuration import configured
from cli.serve import one_line, startup_failed
from db import migrate, stats
from db.engine import create_engine, create_sessionmaker
from db.read_sessions import ReadSessions
from db.replica_monitor import ReplicaMonitor
from db.replicas import Replicas, replica_set
from schema import build_schema, persisted_store
from schema.auth import viewer_cache
from schema.engine.rate_limits import rate_limits
from schema.engine.redis_link import RedisLink
from schema.engine.response_cache import ResponseCache, fingerprint
from schema.live import outbox
from schema.live.postgres import broker_for
from schema.telemetry import exposition, lifecycle, logs, tracing
from schema.telemetry.http import ObserveRequests
from schema.transport import graphiql
from schema.transport.admission import Admission
from schema.transport.body_limit import BodySizeLimit
from schema.transport.cors import cors_middleware
from schema.transport.csrf import CsrfProtection
from schema.transport.disconnect import CancelOnDisconnect
from schema.transport.view import GraphQLApp
from schema.writes import changes
from settings import Settings

logger = logging.getLogger("inkwell")

SCHEMA_FILE = cli.SCHEMA_FILE
#: Seconds /readyz waits for the database before answering 503.
READY_TIMEOUT = 2.0


def create_app(settings: Settings | None = None, *, tracer_provider: Any = None) -> Starlette:
    """Build the ASGI app: ``/graphql`` (POST, GET, GraphiQL, WebSocket), ``/healthz``,
    ``/readyz``, ``/metrics`` (Prometheus). With ``TRACING`` on, spans go to
    ``tracer_provider`` (an OpenTelemetry SDK ``TracerProvider``) when given, else to one made
    from the ``OTEL_*`` variables (``schema.telemetry.tracing``).

    The lifespan creates the engine, the session factory, the event broker and the viewer
    cache (which the broker's LISTEN connection keeps true) on start-up, and stops the broker
    and disposes the pool on shutdown. Source: Starlette docs, "Lifespan".
    """
    settings = settings or configured()
    # `uvicorn server:app` with no log configuration: the app's lines in LOG_FORMAT.
    logs.configure(settings, unless_configured=True)
    traced = tracing.configure(settings, tracer_provider)
    # The process's Redis client, shared by what lives there (REDIS_URL).
    link = RedisLink(settings.redis_url) if settings.redis_url else None
    try:
        # Persisted queries: the process's, or Redis shared by every process (REDIS_URL).
        persisted = persisted_store(settings, link)
        schema = build_schema(settings, traced, persisted)
        responses = response_cache(settings, schema, link)
    except ValueError as exc:  # an unreadable or malformed OPERATION_MANIFEST
        print(f"inkwell: invalid configuration:\n  OPERATION_MANIFEST: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    graphql = GraphQLApp(schema, settings)
    head = migrate.head_revision()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        replicas = monitor = checks = None
        try:
            engine = create_engine(settings)
            # Every operation's log line and metrics count its statements (schema.telemetry).
            stats.install(engine)
            if traced is not None:  # the exporter's thread
                traced.start()
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            # Query operations' sessions, used again once reset. On PostgreSQL their reads run on
            # the driver, on the session's connection (db.reader), and never begin a transaction.
            app.state.read_sessions = ReadSessions(app.state.sessionmaker, settings.db_pool_size)
            # DATABASE_REPLICA_URLS: query operations' sessions bound to a replica (db.replicas).
            app.state.replicas = replicas = replica_set(settings, app.state.read_sessions)
            if replicas is not None:
                for replica in replicas.replicas:
                    stats.install(replica.engine)
                monitor = ReplicaMonitor(replicas, engine.url)
                await asyncio.gather(
                    monitor.check(),  # known before the first query
                    *(_first_connection(replica.engine) for replica in replicas.replicas),
                )
                checks = asyncio.create_task(monitor.run())
            app.state.broker = broker = broker_for(settings.database_url)
            # HTTP operations take turns (schema.transport.admission).
            app.state.admission = Admission(settings.max_concurrent_operations or None)
            # Token buckets per viewer and address, in Redis with REDIS_URL (rate_limits).
            app.state.redis = link  # the one client (None without REDIS_URL)
            app.state.rate_limits = rate_limits(settings, link)
            # Fed by the broker's LISTEN connection (PostgreSQL); never trusted in-process.
            app.state.viewers = viewers = viewer_cache.ViewerCache(settings.viewer_cache_seconds)
            broker.follow(viewer_cache.CHANNEL, viewers)
            # Anonymous queries' responses, stale after any commit changing what they read.
            app.state.response_cache = responses
            if responses is not None:
                changes.install(engine)
                responses.attach(broker)
            await broker.start()
            retention = settings.event_retention_seconds
            pruner = asyncio.create_task(outbox.prune_every(app.state.sessionmaker, retention))
            await _first_connection(engine)
        except Exception as exc:
            startup_failed(one_line(exc))  # so that `serve` exits 1, not uvicorn's 0
            await _stop_replicas(replicas, monitor, checks)
            raise
        try:
            async with lifecycle.observed(engine, settings, replicas) as app.state.sampler:
                with gc_tuning.tuned(settings.gc_thresholds):
                    yield
        finally:
            pruner.cancel()
            await broker.stop()
            await engine.dispose()
            await _stop_replicas(replicas, monitor, checks)
            await persisted.close()
            if link is not None:
                await link.close()
            if traced is not None:
                traced.stop()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        # Ready means: the database answers, and its schema is the one this code expects.
        # Replicas are detail (each one's state and lag): reads go to the primary without them.
        replicas = request.app.state.replicas
        detail = {"replicas": replicas.report()} if replicas is not None else {}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                async with request.app.state.engine.connect() as conn:
                    revision = await migrate.current_revision(conn)
        except Exception as exc:  # any failure means "not ready"; the cause goes to the log
            logger.warning("readiness check failed: %r", exc)
            return JSONResponse({"status": "unavailable", **detail}, status_code=503)
        if revision != head:
            logger.warning("database at revision %s, expected %s: run migrate", revision, head)
            return JSONResponse({"status": "not migrated", **detail}, status_code=503)
        if not request.app.state.broker.listening:
            # Subscribers here would miss events until the LISTEN connection is back.
            return JSONResponse({"status": "events unavailable", **detail}, status_code=503)
        return JSONResponse({"status": "ready", **detail})

    async def metrics(request: Request) -> Response:
        # The process's Prometheus metrics, or with several workers every live worker's
        # (schema.telemetry.exposition); this worker's sampled gauges brought up to date.
        request.app.state.sampler.sample()
        body, media_type = exposition.scrape()
        return Response(body, media_type=media_type)

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


def response_cache(settings: Settings, schema: Any, link: RedisLink | None) -> ResponseCache | None:
    """The response cache when ``RESPONSE_CACHE`` is on (in Redis through ``link`` when
    given), its keys bound to ``schema``'s SDL (``schema.engine.response_cache``)."""
    if not settings.response_cache:
        return None
    return ResponseCache(settings, fingerprint(schema.as_str(), settings), link)


async def _first_connection(engine: AsyncEngine) -> None:
    # The dialect's own queries on the engine's first connection (server version, settings)
    # run now, not inside the first operation, whose log line and metrics would count them.
    # A database that is down is not a reason to stop starting: /readyz reports it.
    try:
        async with asyncio.timeout(READY_TIMEOUT), engine.connect():
            pass
    except Exception as exc:
        logger.warning("database not reachable at start-up: %s", one_line(exc))


async def _stop_replicas(
    replicas: Replicas | None, monitor: ReplicaMonitor | None, checks: asyncio.Task[None] | None
) -> None:
    # The checks end before their connections close (a check cut short leaves nothing open),
    # then each replica's pool. Whatever was made so far, at shutdown or a failed start-up.
    if checks is not None:
        checks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checks
    if monitor is not None:
        monitor.close()
    for replica in replicas.replicas if replicas is not None else ():
        await replica.engine.dispose()


def middleware(settings: Settings) -> list[Middleware]:
    """The HTTP middleware, outermost first: the request's id, log line and metrics; CORS
    (answers preflights itself), CSRF protection, the cap on request bodies and the deadline
    for receiving them, and cancelling
    the work of a client that left."""
    stack = [Middleware(ObserveRequests)]
    if (cors := cors_middleware(settings)) is not None:
        stack.append(cors)
    if settings.csrf_protection:
        stack.append(Middleware(CsrfProtection))
    stack.append(
        Middleware(
            BodySizeLimit,
            max_bytes=settings.max_body_bytes,
            timeout_seconds=settings.body_timeout_seconds,
        )
    )
    stack.append(Middleware(CancelOnDisconnect))
    return stack


def export_schema(settings: Settings) -> str:
    """The schema's SDL, as committed in ``schema.graphql``."""
    return build_schema(settings).as_str() + "\n"


def served_app() -> Starlette:
    """``create_app()`` as ``serve``'s workers build it (uvicorn's factory). A failure leaves
    the mark ``serve`` exits 1 on (``cli.serve.startup_failed``) and ends the worker with
    uvicorn's start-up failure code, which stops the other workers instead of restarting this
    one forever (uvicorn docs, "Deployment": workers)."""
    try:
        return create_app()
    except BaseException as exc:
        # A SystemExit has printed its reason (an invalid OPERATION_MANIFEST).
        startup_failed("invalid configuration" if isinstance(exc, SystemExit) else one_line(exc))
        raise SystemExit(STARTUP_FAILURE) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command of the command line (``cli``); returns the process exit code."""
    return cli.main(argv)


def __getattr__(name: str) -> Any:
    # ``server:app``, built on first use (PEP 562), once per process.
    if name == "app":
        globals()["app"] = built = create_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
