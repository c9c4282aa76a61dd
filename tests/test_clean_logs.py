"""Clean logs under bursts and outages (issue 19): a burst of concurrent queries far above the
pool, and a database whose connections are all terminated while it refuses new ones, leave
no error line, no stray coroutine, and at most one warning of a kind per interval."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import InterfaceError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from schema.auth.tokens import issue_token
from schema.context import Context
from schema.telemetry.repeats import RepeatedLines
from settings import Settings
from tests.conftest import OWNER, App, app_settings, bearer, running_app
from tests.live import free_port, wait_healthy
from tests.test_cli import run
from tests.test_serve import PRODUCTION, serve, stop

QUERY = "{ users(first: 3) { nodes { name posts(first: 2) { nodes { title } } } } }"
MUTATION = 'mutation { createPost(input: {title: "t", content: "c"}) { __typename } }'
#: An interval longer than the test: each kind of warning may be written once.
INTERVAL = 600.0


@pytest.fixture
async def small_pool(write_db_url: str) -> AsyncIterator[App]:
    """The app over a database of its own with a pool of 3 (and 2 more under load)."""
    if write_db_url.startswith("sqlite"):
        pytest.skip("the pool and its connections are PostgreSQL's")
    settings = app_settings(write_db_url, db_pool_size=3, db_max_overflow=2, db_pool_timeout=2)
    async with running_app(settings) as app:
        yield app


@contextmanager
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The records written at WARNING or worse in the block, through the same rate limit as
    every worker's handler (``RepeatedLines``), with an interval longer than the test."""
    repeats = RepeatedLines(INTERVAL)
    caplog.handler.addFilter(repeats)
    try:
        with caplog.at_level(logging.WARNING):
            yield caplog.records
            repeats.flush(everything=True)  # as a worker does at its end
    finally:
        caplog.handler.removeFilter(repeats)


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def terminate_all(app: App) -> None:
    """End every server connection to the app's database, as a restart does."""
    killer = create_async_engine(app.settings.database_url, poolclass=NullPool)
    try:
        async with killer.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await killer.dispose()


@contextmanager
def refusing(app: App) -> Iterator[None]:
    """New connections of the app are refused, as by a database that is down (the engine's
    public ``do_connect`` event, raising what asyncpg raises then)."""

    def refuse(*_: Any) -> None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    event.listen(app.engine.sync_engine, "do_connect", refuse)
    try:
        yield
    finally:
        event.remove(app.engine.sync_engine, "do_connect", refuse)


async def load(app: App, rounds: int, width: int = 8) -> list[list[str]]:
    """``rounds`` times ``width`` concurrent requests, a third of them mutations; their
    error codes."""
    headers = bearer(app.settings, OWNER)

    async def one(k: int) -> list[str]:
        query = MUTATION if k % 3 == 0 else QUERY
        response = await app.client.post(
            "/graphql", json={"query": query}, headers=headers if k % 3 == 0 else None
        )
        return codes(response.json())

    answers: list[list[str]] = []
    for _ in range(rounds):
        answers += await asyncio.gather(*(one(k) for k in range(width)))
    return answers


async def test_an_outage_leaves_no_stray_coroutine_and_one_line_of_a_kind(
    small_pool: App, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    app = small_pool
    with logged(caplog) as records:
        for _ in range(3):
            assert {tuple(c) for c in await load(app, 2)} == {()}  # every connection made
            with refusing(app):
                await terminate_all(app)  # between requests: every pooled connection dead
                during = await load(app, 3)
                assert {tuple(c) for c in during} <= {("SERVICE_UNAVAILABLE",)}, during
            # The database is back: requests succeed again, at once.
            after = await load(app, 4)
            assert {tuple(c) for c in after} == {()}, after
            for _ in range(6):  # one at a time too: each takes an idle pooled connection
                assert (
                    codes((await app.client.post("/graphql", json={"query": QUERY})).json()) == []
                )
        gc.collect()
    stray = [str(w.message) for w in recwarn if "never awaited" in str(w.message)]
    assert stray == []
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    # One line of each kind in the interval; the log's last word on a kind (``flush``, at a
    # worker's end) counts the rest, ``repeated``.
    kinds = [
        (r.name, r.levelno, r.getMessage())
        for r in records
        if not r.name.endswith(("operation", "sql")) and not hasattr(r, "repeated")
    ]
    assert len(kinds) == len(set(kinds)), kinds


async def test_a_session_that_cannot_be_closed_is_dropped_with_one_line(
    small_pool: App, caplog: pytest.LogCaptureFixture
) -> None:
    # What an outage does to a mutation's session: its ROLLBACK refused by asyncpg on the
    # broken connection (raised here by the engine's public ``rollback`` event, once each).
    app = small_pool
    pool: Any = app.engine.sync_engine.pool

    def refusal() -> Any:
        def refuse(*_: Any) -> None:
            refused = Exception("cannot switch to state 15; another operation (2) is in progress")
            raise InterfaceError("ROLLBACK", None, refused)

        return refuse  # a listener of its own each time: a listener is added once

    with logged(caplog) as records:
        for _ in range(5):
            event.listen(app.engine.sync_engine, "rollback", refusal(), once=True)
            ctx = Context(settings=app.settings, sessionmaker=app.app.state.sessionmaker)
            await ctx.run(lambda session: session.execute(text("SELECT 1")))  # a transaction
            await ctx.close()
            assert pool.checkedout() == 0  # dropped, not left checked out
    assert codes((await app.client.post("/graphql", json={"query": QUERY})).json()) == []
    lines = [r for r in records if "closing the operation's session" in r.getMessage()]
    first = [r for r in lines if not hasattr(r, "repeated")]
    assert [(r.levelno, r.exc_info) for r in first] == [(logging.WARNING, None)]
    assert len(lines) + sum(getattr(r, "repeated", 0) for r in lines) == 5  # every one counted


def test_a_burst_far_above_the_pool_on_two_workers_logs_no_error(
    tmp_path: Path, clean_env: None, fresh_db_url: str
) -> None:
    # Issue 19's production shape: `serve` with 2 workers, each given several times its pool
    # (DB_POOL_SIZE + DB_MAX_OVERFLOW; 10 times it here) of concurrent reads, signed in and
    # anonymous, some clients giving up mid-request.
    if fresh_db_url.startswith("sqlite"):
        pytest.skip("several workers serve PostgreSQL only")
    postgres_url = fresh_db_url
    assert run("migrate", cwd=tmp_path, DATABASE_URL=postgres_url).returncode == 0
    assert run("seed", "--users", "60", cwd=tmp_path, DATABASE_URL=postgres_url).returncode == 0
    port = free_port()
    # A pool of 10 + 5 per worker: the test database server is shared (max_connections).
    pool = {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "5"}
    process = serve(
        tmp_path, port, DATABASE_URL=postgres_url, WORKERS="2", LOG_LEVEL="warning", **pool
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, seconds=60)
        settings = Settings(
            database_url=postgres_url, environment="production", jwt_secret=PRODUCTION["JWT_SECRET"]
        )
        tokens = [issue_token(settings, user).token for user in range(1, 41)]
        asyncio.run(burst(base, tokens, width=300, rounds=3))
    finally:
        code, out = stop(process)
        print(out[-20000:])  # shown when the test fails
    assert code == 0, out
    for bad in ("Traceback", "ERROR", "MissingGreenlet", "never awaited", "Exception closing"):
        assert bad not in out, out[-5000:]


async def burst(base: str, tokens: list[str], *, width: int, rounds: int) -> None:
    """``rounds`` bursts of ``width`` concurrent nested reads on connections of their own,
    half of them signed in with one of ``tokens``; every tenth client of the second round
    gives up after 50 ms."""
    limits = httpx.Limits(max_connections=width)
    for round_ in range(rounds):
        # A client per round: a connection left idle by the last round may be closed by the
        # server's keep-alive timeout (5 s) just as it is reused, which httpx reports as a
        # ReadError (a round takes seconds).
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

            async def one(k: int, patience: float) -> int:
                try:
                    response = await client.post(
                        "/graphql", json={"query": QUERY}, timeout=patience
                    )
                except httpx.TimeoutException:
                    return 0
                assert codes(response.json()) == [], response.text
                return response.status_code

            statuses = await asyncio.gather(
                *(one(k, 0.05 if round_ == 1 and k % 10 == 0 else 60) for k in range(width))
            )
            assert set(statuses) <= {200, 0}
