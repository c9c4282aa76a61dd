"""Shared fixtures: a seeded database per backend, the real app over it, an httpx client,
and a SQL statement counter built on engine events."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate
from db.engine import create_engine
from db.seed import SeedSize, seed
from schema.auth.tokens import issue_token
from server import create_app
from settings import Settings
from tests.databases import BACKENDS, throwaway_database
from tests.live import Live, graphql_body, live_server
from tests.redis_server import redis_client  # noqa: F401 (a fixture for every test)

#: The read tests' data set: big enough that first: 50 and per-parent limits mean something.
READ_SEED = SeedSize(users=60, posts_per_user=12, comments_per_post=6, tags=12, tags_per_post=3)
#: The seeded admin (``db.seed``: user 1 is always an active admin).
ADMIN_ID = 1
TEST_SECRET = "inkwell-tests-7Hq2xV9mB4nR8sL1wZ6cK3pD5fJ0gT"
#: Posts whose created_at and title are set equal, to exercise id tie-breaking.
TIE_TIME = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


#: The suite runs on several processes (pytest-xdist, ``--dist loadgroup``: see pyproject.toml).
#: The tests of one group here run on one worker, one after another, because they must not
#: overlap (keyed by the start of their node ids):
#: - ``relay-compiler``: the Relay suite compiles into tests/clients/relay/__generated__,
#:   which its run on the other backend reads meanwhile;
#: - ``chromium``: two browsers at once would crowd two cores, and the GraphiQL test keeps its
#:   screenshot at one fixed path;
#: - ``schemathesis``: the fuzzer keeps a cache in .schemathesis/ of the working directory,
#:   which two runs at once would write together;
#: - ``replicas``: one primary and streaming replica pair serves them all, made once.
XDIST_GROUPS = {
    "tests/test_clients.py::test_relay[": "relay-compiler",
    "tests/test_graphiql_browser.py::": "chromium",
    "tests/test_fuzz.py::": "schemathesis",
    "tests/test_replicas.py::": "replicas",
}


#: At most this many workers for ``-n auto``: at a peak each worker's apps and servers hold
#: about 14 PostgreSQL connections (6 workers reached 84), and PostgreSQL allows 100 by
#: default, to be shared with whatever else uses the server (another run of the suite).
MAX_AUTO_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` starts: one more than the CPUs this process may use, as
    the tests wait on PostgreSQL, node, Chromium and server processes a lot (on 2 cores the
    whole suite took 179 s with 2 workers, 164 s with 3, 169 s with 4), up to
    ``MAX_AUTO_WORKERS``. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` overrides it, as it does xdist's
    own count, and so does ``-n N``."""
    if override := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(override)
    return min(len(os.sched_getaffinity(0)) + 1, MAX_AUTO_WORKERS)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (it renames grouped tests)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for prefix, group in XDIST_GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def read_db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated database holding ``READ_SEED`` plus edge cases; read-only for tests."""
    async with throwaway_database(backend, tmp_path_factory.mktemp("db")) as url:
        engine = create_engine(Settings(database_url=url))
        try:
            await migrate.upgrade(engine)
            await seed(engine, READ_SEED)
            async with engine.begin() as conn:
                # A user and a tag with nothing attached: empty nested connections.
                await conn.execute(
                    text(
                        "INSERT INTO users (id, email, name) "
                        "VALUES (1000, 'lonely@example.com', 'Lonely Writer')"
                    )
                )
                await conn.execute(text("INSERT INTO tags (id, name) VALUES (1000, 'unused')"))
                # Ties on every sort key (created_at, published_at, title), broken by id.
                tie = TIE_TIME if backend == "postgresql" else "2025-06-01 12:00:00.000000"
                await conn.execute(
                    text("UPDATE posts SET created_at = :t, title = 'Same Title' WHERE id % 7 = 0"),
                    {"t": tie},
                )
                await conn.execute(
                    text(
                        "UPDATE posts SET published_at = :t "
                        "WHERE id % 11 = 0 AND status = 'published'"
                    ),
                    {"t": tie},
                )
        finally:
            await engine.dispose()
        yield url


#: How the outbox's pruning statement (``schema.live.outbox.prune``) begins: not counted.
PRUNE = "DELETE FROM events"


@dataclass
class App:
    """The real ASGI app over a database, with an httpx client and a statement counter (the
    statements of the app's background pruning of the outbox left out)."""

    app: Any
    client: httpx.AsyncClient
    engine: AsyncEngine
    settings: Settings
    statements: list[str] = field(default_factory=list)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, as_user: int | None = None
    ) -> dict[str, Any]:
        """POST a GraphQL request (signed in as ``as_user`` if given, else with the client's
        default headers); assert HTTP 200 (401 with its challenge for refused credentials:
        ``graphql_status``) and return the JSON body."""
        headers = bearer(self.settings, as_user) if as_user is not None else None
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return graphql_body(response)

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, as_user: int | None = None
    ) -> dict[str, Any]:
        """Like ``gql``, asserting there are no errors; returns ``data``."""
        body = await self.gql(query, variables, as_user=as_user)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    def count(self) -> int:
        return len(self.statements)

    @property
    def sign_in(self) -> int:
        """Statements a signed-in request costs before its resolvers run: none while the
        process's viewer cache is fed (PostgreSQL; ``api`` has the viewer remembered before
        each test), else one, the viewer's row."""
        return 0 if self.app.state.viewers.trusted else 1

    @property
    def publish_statements(self) -> int:
        """What publishing a mutation's events costs at commit: one statement, their outbox
        rows (with, on PostgreSQL, the lock ordering them and the ``pg_notify``)."""
        return 1


def bearer(settings: Settings, user_id: int) -> dict[str, str]:
    """The Authorization header of a fresh token for ``user_id``."""
    return {"Authorization": f"Bearer {issue_token(settings, user_id).token}"}


@asynccontextmanager
async def running_app(settings: Settings, user_id: int | None = None) -> AsyncIterator[App]:
    """The app for ``settings`` with its lifespan running, and an httpx client on it (signed
    in as ``user_id`` when given)."""
    app = create_app(settings)
    headers = bearer(settings, user_id) if user_id is not None else {}
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            harness = App(app=app, client=client, engine=engine, settings=settings)

            def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                # The outbox's pruner runs in the lifespan every minute, whatever the test does.
                if not statement.startswith(PRUNE):
                    harness.statements.append(statement)

            event.listen(engine.sync_engine, "before_cursor_execute", record)
            yield harness


def app_settings(url: str, **overrides: Any) -> Settings:
    """Development settings for ``url`` with a fixed JWT key (no key file is written)."""
    return Settings(database_url=url, jwt_secret=TEST_SECRET, **overrides)


@pytest.fixture(scope="session")
async def read_app(read_db_url: str) -> AsyncIterator[App]:
    """The app (development settings) over the read-only seeded database, signed in as the
    admin (user 1), who sees every row: the read tests compare with the tables themselves.
    A request costs ``App.sign_in`` statements more than anonymously."""
    async with running_app(app_settings(read_db_url), user_id=ADMIN_ID) as app:
        yield app


@pytest.fixture
async def api(read_app: App) -> AsyncIterator[App]:
    """``read_app`` with its viewer remembered (where the viewer cache is fed) and the
    statement counter reset for this test."""
    if read_app.sign_in == 0:
        await read_app.data("{ __typename }")
    read_app.statements.clear()
    yield read_app


@pytest.fixture
async def fresh_db_url(backend: str, tmp_path: Any) -> AsyncIterator[str]:
    """A new, empty (unmigrated) database for a test that writes."""
    async with throwaway_database(backend, tmp_path) as url:
        yield url


#: The write tests' data set, with fixed roles: user 1 the admin, 2 the owner of what the
#: tests change, 3 another member, 4 a deactivated member.
WRITE_SEED = SeedSize(users=6, posts_per_user=3, comments_per_post=2, tags=5, tags_per_post=2)
OWNER, OTHER, DEACTIVATED = 2, 3, 4


async def prepare_write_db(url: str) -> None:
    """Migrate and seed ``url`` with ``WRITE_SEED``, then fix the roles the tests rely on."""
    engine = create_engine(Settings(database_url=url))
    try:
        await migrate.upgrade(engine)
        await seed(engine, WRITE_SEED)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE users SET role = CASE WHEN id = 1 THEN 'admin' ELSE 'member' END, "
                    "is_active = (id <> :deactivated)"
                ),
                {"deactivated": DEACTIVATED},
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def write_template_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database as ``prepare_write_db`` leaves it, made once per backend and process (each
    xdist worker makes its own): ``write_db_url`` copies it, which is several times cheaper
    than migrating, seeding and hashing the demo password for every write test. The seed is
    deterministic, so a copy holds exactly the rows a fresh ``prepare_write_db`` would. Nothing
    may stay connected to it: PostgreSQL copies only a database nobody is connected to."""
    async with throwaway_database(backend, tmp_path_factory.mktemp("template")) as url:
        await prepare_write_db(url)
        yield url


@pytest.fixture
async def write_db_url(backend: str, write_template_url: str, tmp_path: Any) -> AsyncIterator[str]:
    """A database of its own for a test that writes, holding what ``prepare_write_db`` makes
    (``WRITE_SEED`` with the roles fixed): a copy of ``write_template_url``."""
    async with throwaway_database(backend, tmp_path, template=write_template_url) as url:
        yield url


@pytest.fixture
async def write_app(write_db_url: str) -> AsyncIterator[App]:
    """The app over a database of its own (``WRITE_SEED``), anonymous by default: pass
    ``as_user=`` to sign a request in."""
    async with running_app(app_settings(write_db_url)) as app:
        yield app


@pytest.fixture
async def live(write_db_url: str) -> AsyncIterator[Live]:
    """A real server process (uvicorn) over a database of its own (``WRITE_SEED``)."""
    engine = create_engine(app_settings(write_db_url))
    try:
        with live_server(
            DATABASE_URL=write_db_url, JWT_SECRET=TEST_SECRET, DB_POOL_SIZE="25"
        ) as base:
            yield Live(base, write_db_url, engine, TEST_SECRET)
    finally:
        await engine.dispose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the environment of the test run reaches a command the test starts."""
    for name in (
        "DATABASE_URL",
        "ENVIRONMENT",
        "GRAPHIQL",
        "SQL_STATS",
        "PORT",
        "HOST",
        "JWT_SECRET",
        "JWT_SECRET_FILE",
        "WORKERS",
        "MIGRATE_ON_START",
        "OPERATION_MANIFEST",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
