"""Read replicas (DATABASE_REPLICA_URLS) on a real streaming replica: queries read there,
mutations on the primary, read-your-writes across instances, a lagging or stopped replica
skipped and taken back.

The pair (a primary made by initdb, a hot standby by ``pg_basebackup -R``) is made once per
test process (``replica_pair``) and shared by these tests, which run on one xdist worker
(``tests/conftest.py``: ``XDIST_GROUPS``); each test leaves the replica running and replaying.
They run with the PostgreSQL half of the suite (``TEST_DATABASE_URL``), and fail rather than
skip when ``INKWELL_REQUIRE_POSTGRES=1`` and the pair cannot be made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import AsyncMock, Mock

import asyncpg
import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.configuration import problems
from db.read_sessions import ReadSessions
from db.replica_monitor import ReplicaMonitor
from db.replicas import Replica, Replicas, State, format_lsn, parse_lsn, replica_set
from schema.auth.viewer import Viewer
from schema.auth.viewer_cache import ViewerCache
from settings import Settings
from tests.conftest import (
    OWNER,
    TEST_SECRET,
    App,
    app_settings,
    bearer,
    prepare_write_db,
    running_app,
)
from tests.databases import POSTGRES_URL
from tests.live import graphql_body, live_server
from tests.postgres_server import PostgresServer, streaming_pair

CREATE = """mutation($i: CreatePostInput!) { createPost(input: $i) {
  ... on PostPayload { post { id } } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on Post { title } } }"
QUERY = "{ posts(first: 3) { nodes { title author { name } } } }"
HEADER = "inkwell-read-after"


@dataclass
class Pair:
    """The primary and its replica, and the URLs of the seeded database on each."""

    primary: PostgresServer
    replica: PostgresServer
    url: str
    replica_url: str

    async def _fetchval(self, server: PostgresServer, sql: str) -> Any:
        # The cluster's own database: the WAL functions are the cluster's.
        connection = await asyncpg.connect(host="127.0.0.1", port=server.port, user="postgres")
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    async def on_replica(self, sql: str) -> Any:
        return await self._fetchval(self.replica, sql)

    async def caught_up(self, seconds: float = 30) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        target = await self._fetchval(self.primary, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + seconds
        while (await self.on_replica("SELECT pg_last_wal_replay_lsn()")) < target:
            assert time.monotonic() < deadline, "the replica did not catch up"
            await asyncio.sleep(0.05)

    async def pause(self) -> None:
        """Pause replay on the replica, and wait until it is paused."""
        await self.on_replica("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 30
        while await self.on_replica("SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            await asyncio.sleep(0.05)

    async def resume(self) -> None:
        await self.on_replica("SELECT pg_wal_replay_resume()")
        await self.caught_up()


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    if not POSTGRES_URL:
        pytest.skip("the PostgreSQL half of the suite (TEST_DATABASE_URL) runs the replica tests")
    with streaming_pair() as servers:
        yield servers


@pytest.fixture(scope="session")
async def replica_pair(_servers: tuple[PostgresServer, PostgresServer]) -> AsyncIterator[Pair]:
    """The streaming pair with a database ``inkwell`` as ``prepare_write_db`` leaves it."""
    primary, replica = _servers
    admin = await asyncpg.connect(host="127.0.0.1", port=primary.port, user="postgres")
    try:
        await admin.execute("CREATE DATABASE inkwell")
    finally:
        await admin.close()
    pair = Pair(primary, replica, primary.url_of("inkwell"), replica.url_of("inkwell"))
    await prepare_write_db(pair.url)
    await pair.caught_up()
    yield pair


@pytest.fixture
async def pair(replica_pair: Pair) -> AsyncIterator[Pair]:
    """``replica_pair``, left replaying and caught up by each test."""
    yield replica_pair
    if await replica_pair.on_replica("SELECT pg_is_wal_replay_paused()"):
        await replica_pair.resume()


def replica_settings(pair: Pair, **overrides: Any) -> Settings:
    values = {"replica_check_seconds": 0.2, "max_replica_lag_seconds": 30.0, **overrides}
    return app_settings(pair.url, database_replica_urls=[pair.replica_url], **values)


def statements_on(engine: AsyncEngine) -> list[str]:
    """Every statement ``engine`` runs from now on (reads on the driver included)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("DELETE FROM events"):  # the outbox's pruner
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen


def replica_engine(app: App) -> AsyncEngine:
    engine: AsyncEngine = app.app.state.replicas.replicas[0].engine
    return engine


async def replica_state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    (found,) = response.json()["replicas"]
    return found  # type: ignore[no-any-return]


async def wait_for_state(client: httpx.AsyncClient, state: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while (found := await replica_state(client))["state"] != state:
        assert time.monotonic() < deadline, f"the replica stayed {found}, never {state}"
        await asyncio.sleep(0.05)


async def holding_account_changes(app: App, seconds: float = 30) -> None:
    """Wait until the replica is known to hold every account change the viewer cache has heard
    of: until then a query whose viewer is not remembered reads on the primary."""
    replica = app.app.state.replicas.replicas[0]
    deadline = time.monotonic() + seconds
    while replica.as_of < app.app.state.viewers.changed_at:
        assert time.monotonic() < deadline, "the replica never held the viewer cache's changes"
        await asyncio.sleep(0.05)


async def replica_up(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(r'^inkwell_db_replica_up\{[^}]*replica="0"[^}]*\} (\S+)$', text, re.M)
    assert match is not None, text
    return float(match.group(1))


async def create_post(app: App, title: str) -> tuple[str, httpx.Response]:
    response = await app.client.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {"i": {"title": title, "content": "x", "publish": True}},
        },
        headers=bearer(app.settings, OWNER),
    )
    body = graphql_body(response)
    return body["data"]["createPost"]["post"]["id"], response


async def test_queries_read_on_the_replica_and_mutations_on_the_primary(pair: Pair) -> None:
    async with running_app(replica_settings(pair)) as app:
        on_replica = statements_on(replica_engine(app))
        assert replica_engine(app).url.port == pair.replica.port
        assert await pair.on_replica("SELECT pg_is_in_recovery()") is True
        assert (await replica_state(app.client))["state"] == "ok"
        app.statements.clear()
        assert "errors" not in await app.gql(QUERY)
        assert len(on_replica) == 2 and app.statements == [], (on_replica, app.statements)
        on_replica.clear()
        _, response = await create_post(app, "written on the primary")
        # The viewer, INSERT, the payload's post, the outbox row, and the commit's position.
        assert on_replica == [] and app.statements, app.statements
        assert "pg_current_wal_lsn" in app.statements[-1]
        position = response.json()["extensions"]["readAfter"]
        assert response.headers[HEADER] == position and parse_lsn(position) > 0
        assert await replica_up(app.client) == 1.0
        found = await replica_state(app.client)
        assert found["host"] == f"127.0.0.1:{pair.replica.port}/inkwell"
        assert found["lagSeconds"] is not None and found["lagSeconds"] <= 30


async def test_a_response_the_cache_keeps_is_read_on_the_primary(pair: Pair) -> None:
    # Cache positions are event ids, not WAL positions: no replica can be shown to have
    # replayed them, so a fill reads where every commit they name is visible.
    async with running_app(replica_settings(pair, response_cache=True)) as app:
        on_replica = statements_on(replica_engine(app))
        app.statements.clear()
        filled = await app.client.post("/graphql", json={"query": QUERY})
        assert filled.headers["x-cache"] == "MISS" and "errors" not in filled.json()
        assert on_replica == [] and len(app.statements) == 2, (on_replica, app.statements)
        app.statements.clear()
        hit = await app.client.post("/graphql", json={"query": QUERY})
        assert hit.headers["x-cache"] == "HIT"
        assert hit.json()["data"] == filled.json()["data"]
        assert on_replica == [] and app.statements == []
        # A read at a WAL position is never answered from the cache: a malformed one is 400.
        malformed = await app.client.post(
            "/graphql", json={"query": QUERY}, headers={HEADER: "nonsense"}
        )
        assert malformed.status_code == 400 and "x-cache" not in malformed.headers
        # A signed-in query is never cached, and reads on the replica as before (once it
        # holds what the viewer cache forgot when it started trusting its feed).
        await holding_account_changes(app)
        signed_in = await app.client.post(
            "/graphql", json={"query": QUERY}, headers=bearer(app.settings, OWNER)
        )
        assert "errors" not in signed_in.json() and len(on_replica) >= 2, on_replica


async def test_without_replicas_a_mutation_costs_what_it_did(pair: Pair) -> None:
    counts = []
    for settings in (app_settings(pair.url), replica_settings(pair)):
        async with running_app(settings) as app:
            app.statements.clear()
            _, response = await create_post(app, "counted")
            counts.append(app.count())
            if settings.database_replica_urls:
                assert HEADER in response.headers
            else:
                assert HEADER not in response.headers
                assert "readAfter" not in response.json()["extensions"]
    # The replicas' only cost: the commit's position, one statement with no BEGIN/ROLLBACK.
    assert counts[1] == counts[0] + 1, counts


async def test_a_position_that_is_not_one_is_a_clear_400(pair: Pair) -> None:
    async with running_app(replica_settings(pair)) as app:
        response = await app.client.post(
            "/graphql", json={"query": QUERY}, headers={HEADER: "not-a-position"}
        )
        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert "Inkwell-Read-After" in error["message"] and "0/16B3748" in error["message"]


async def test_read_your_writes_across_two_instances_with_the_position(pair: Pair) -> None:
    env = {
        "DATABASE_URL": pair.url,
        "JWT_SECRET": TEST_SECRET,
        "DATABASE_REPLICA_URLS": pair.replica_url,
        "REPLICA_CHECK_SECONDS": "0.2",
        "MAX_REPLICA_LAG_SECONDS": "120",
    }
    owner = bearer(app_settings(pair.url), OWNER)
    with live_server(**env) as base_a, live_server(**env) as base_b:
        async with (
            httpx.AsyncClient(base_url=base_a, timeout=30) as a,
            httpx.AsyncClient(base_url=base_b, timeout=30) as b,
        ):
            await wait_for_state(a, "ok")
            await wait_for_state(b, "ok")
            # b remembers the owner: their reads there are not sent to the primary for want
            # of a replica holding every account change b has heard of.
            who = await b.post("/graphql", json={"query": "{ viewer { id } }"}, headers=owner)
            assert "errors" not in graphql_body(who)
            await pair.pause()  # the replica is now behind whatever is written next
            response = await a.post(
                "/graphql",
                json={
                    "query": CREATE,
                    "variables": {"i": {"title": "mine", "content": "x", "publish": True}},
                },
                headers=owner,
            )
            body = graphql_body(response)
            post_id = body["data"]["createPost"]["post"]["id"]
            position = response.headers[HEADER]
            assert body["extensions"]["readAfter"] == position

            async def title(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
                answer = await client.post(
                    "/graphql", json={"query": NODE, "variables": {"id": post_id}}, headers=headers
                )
                return graphql_body(answer)["data"]["node"]

            # Another instance, without the position: its replica has not replayed the post.
            assert await title(b, {}) is None
            assert await title(b, owner) is None
            # With it: served by the primary, as no replica has replayed that far.
            assert await title(b, {HEADER: position}) == {"title": "mine"}
            # The instance that committed pins its viewer, and only them, to the primary.
            assert await title(a, owner) == {"title": "mine"}
            assert await title(a, {}) is None
            await pair.resume()
            deadline = time.monotonic() + 30
            while await title(b, {}) is None:  # the replica caught up: read there
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert await title(b, {HEADER: position}) == {"title": "mine"}


async def test_a_replica_lagging_past_the_limit_is_skipped_and_taken_back(pair: Pair) -> None:
    async with running_app(replica_settings(pair, max_replica_lag_seconds=1.0)) as app:
        on_replica = statements_on(replica_engine(app))
        await pair.pause()
        await create_post(app, "while paused")
        await wait_for_state(app.client, "lagging")
        assert await replica_up(app.client) == 0.0
        assert (await replica_state(app.client))["lagSeconds"] > 1.0
        on_replica.clear()
        app.statements.clear()
        assert "errors" not in await app.gql(QUERY)
        assert on_replica == [] and len(app.statements) == 2, (on_replica, app.statements)
        await pair.resume()
        await wait_for_state(app.client, "ok")
        app.statements.clear()
        assert "errors" not in await app.gql(QUERY)
        assert len(on_replica) == 2 and app.statements == [], (on_replica, app.statements)
        assert await replica_up(app.client) == 1.0


async def test_a_stopped_replica_degrades_to_the_primary_with_no_failed_request(
    pair: Pair,
) -> None:
    async with running_app(replica_settings(pair)) as app:
        on_replica = statements_on(replica_engine(app))
        stopped = asyncio.Event()
        after_stop = 0
        answers: list[tuple[int, dict[str, Any]]] = []

        async def load() -> None:
            nonlocal after_stop
            while after_stop < 40:
                response = await app.client.post("/graphql", json={"query": QUERY})
                answers.append((response.status_code, response.json()))
                if stopped.is_set():
                    after_stop += 1

        served = asyncio.Event()  # by the replica, first
        event.listen(
            replica_engine(app).sync_engine,
            "after_cursor_execute",
            lambda *_: len(on_replica) >= 20 and served.set(),
        )
        loaders = [asyncio.create_task(load()) for _ in range(4)]
        await served.wait()
        await asyncio.to_thread(pair.replica.stop, "fast")
        stopped.set()
        await asyncio.gather(*loaders)
        try:
            assert {status for status, _ in answers} == {200}
            failed = [body for _, body in answers if "errors" in body]
            assert failed == [], failed[:3]
            assert (await replica_state(app.client))["state"] == "down"
            app.statements.clear()
            on_replica.clear()
            assert "errors" not in await app.gql(QUERY)
            assert on_replica == [] and len(app.statements) == 2, (on_replica, app.statements)
        finally:
            await asyncio.to_thread(pair.replica.start)
        await pair.caught_up()
        await wait_for_state(app.client, "ok")
        assert "errors" not in await app.gql(QUERY)
        assert len(on_replica) == 2


def test_replicas_are_refused_with_sqlite_or_a_url_that_is_not_postgresql() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url="sqlite:///x.db", database_replica_urls="postgresql://r/db")
    assert "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL" in problems(refused.value)
    with pytest.raises(ValidationError) as refused:
        Settings(
            database_url="postgresql://u@h/db",
            database_replica_urls="postgresql://r/db,mysql://u:s3cret@h/db",
        )
    line = problems(refused.value)
    assert (
        line.startswith("  DATABASE_REPLICA_URLS: replica 1 (mysql://...)") and "s3cret" not in line
    )
    found = Settings(
        database_url="postgresql://u@h/db", database_replica_urls='["postgres://r1/db"]'
    )
    assert found.database_replica_urls == ["postgresql+asyncpg://r1/db"]


def test_wal_positions_are_read_and_written_as_postgresql_writes_them() -> None:
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert parse_lsn("0/0") == 0 and parse_lsn("0/16B3748") < parse_lsn("1/0")
    for bad in ("", "16", "/1", "1/", "x/1", "1/2/3", "123456789/0", "-1/0"):
        with pytest.raises(ValueError, match="not a WAL position"):
            parse_lsn(bad)


def test_choosing_follows_replay_positions_lag_and_pins() -> None:
    primary = ReadSessions(Mock(), 0)
    replicas = [Replica(i, Mock(), ReadSessions(Mock(), 0)) for i in range(2)]
    found = Replicas(primary, replicas, max_lag=5.0, interval=1.0)
    assert found.choose(None, None)[0] is primary  # not checked yet
    now = time.monotonic()
    found.samples.extend([(now - 3, 100), (now - 2, 200), (now - 1, 300)])
    found.observe(replicas[0], 300, None)  # has all the primary had: 0 s
    found.observe(replicas[1], 250, 99.0)  # has 200, read 2 s ago
    assert (replicas[0].state, replicas[0].lag) == (State.OK, 0.0)
    assert replicas[1].state is State.OK and 2.0 <= (replicas[1].lag or 0) < 3.0
    assert replicas[1].as_of == now - 2
    chosen = {found.choose(None, None)[0] for _ in range(4)}
    assert chosen == {replicas[0].sessions, replicas[1].sessions}  # in turn
    assert {found.choose(260, None)[0] for _ in range(3)} == {replicas[0].sessions}
    assert found.choose(301, None) == (primary, math.inf)
    found.pin(7, 280)
    assert {found.choose(None, 7)[0] for _ in range(3)} == {replicas[0].sessions}
    assert found.choose(None, 8)[0] in {replicas[0].sessions, replicas[1].sessions}
    found.observe(replicas[1], 300, None)  # every replica has the pin now: it goes
    assert found.choose(None, 7)[0] is not primary and 7 not in found._pins
    found.observe(replicas[1], 50, 6.0)  # behind every position remembered: its own clock
    assert replicas[1].state is State.LAGGING and replicas[1].lag == 6.0
    found.observe(replicas[0], None, None)
    assert replicas[0].state is State.DOWN and found.choose(None, None)[0] is primary


async def test_a_viewer_read_on_a_replica_is_remembered_only_if_it_holds_the_forgetting() -> None:
    cache = ViewerCache(60)
    connection = Mock(fetchval=AsyncMock(return_value=True))
    await cache.connected(connection)  # trusted, and everything forgotten now
    before = time.monotonic() - 1
    cache.put(Viewer(1, "member"), cache.generation, as_of=before)
    assert cache.get(1) is None  # the replica may predate what was forgotten
    cache.put(Viewer(1, "member"), cache.generation, as_of=time.monotonic())
    assert cache.get(1) == Viewer(1, "member")
    cache.forget({2})
    cache.put(Viewer(3, "member"), cache.generation, as_of=before)
    cache.put(Viewer(4, "member"), cache.generation)  # the primary's read
    assert cache.get(3) is None and cache.get(4) == Viewer(4, "member")


async def test_a_deactivated_account_is_refused_at_once_while_the_replica_lags(
    pair: Pair,
) -> None:
    # The replica has not replayed the deactivation: the viewer is read where it is seen.
    user, viewer = 6, "{ viewer { databaseId } }"
    async with running_app(replica_settings(pair)) as app:
        on_replica = statements_on(replica_engine(app))
        headers = bearer(app.settings, user)
        try:
            assert (await app.data(viewer, as_user=user))["viewer"] == {"databaseId": "6"}
            await pair.pause()
            deactivated = await app.data(
                'mutation { deactivateUser(input: {id: "6"}) { __typename } }', as_user=user
            )
            assert deactivated["deactivateUser"]["__typename"] == "UserPayload"
            on_replica.clear()
            response = await app.client.post("/graphql", json={"query": viewer}, headers=headers)
            body = response.json()
            assert response.status_code == 401, body
            assert (
                body["errors"][0]["message"] == "The account of this access token is deactivated."
            )
            assert on_replica == [], on_replica
            # Anonymous queries still read on the replica.
            assert "errors" not in await app.gql(QUERY) and len(on_replica) == 2, on_replica
        finally:
            await pair.resume()
            primary = await asyncpg.connect(
                host="127.0.0.1", port=pair.primary.port, user="postgres", database="inkwell"
            )
            try:
                await primary.execute("UPDATE users SET is_active = true WHERE id = $1", user)
            finally:
                await primary.close()
            await pair.caught_up()


async def test_the_monitor_connects_with_sqlalchemy_options_in_the_urls(pair: Pair) -> None:
    option = "?prepared_statement_cache_size=10"
    settings = Settings(
        database_url=pair.url + option, database_replica_urls=[pair.replica_url + option]
    )
    replicas = replica_set(settings, ReadSessions(Mock(), 0))
    assert replicas is not None
    monitor = ReplicaMonitor(replicas, make_url(settings.database_url))
    try:
        await monitor.check()
        (replica,) = replicas.replicas
        assert replica.state is State.OK and replicas.samples, replica
    finally:
        monitor.close()
        await replicas.replicas[0].engine.dispose()


def test_a_full_pool_does_not_mark_a_replica_down(caplog: pytest.LogCaptureFixture) -> None:
    replica = Replica(0, Mock(url="postgresql+asyncpg://u:s3cret@h/db"), ReadSessions(Mock(), 0))
    found = Replicas(ReadSessions(Mock(), 0), [replica], max_lag=5.0, interval=1.0)
    replica.state = State.OK
    found.failed(replica.sessions, PoolTimeout("QueuePool limit of size 5 overflow 0 reached"))
    assert replica.state is State.OK
    refused = DBAPIError("SELECT 1", {}, ConnectionRefusedError(111, "Connect call failed"))
    found.failed(replica.sessions, refused)
    assert replica.state is State.DOWN
    (line,) = [r.getMessage() for r in caplog.records if r.name == "inkwell.replicas"]
    assert line.startswith("replica h:5432/db is down (DBAPIError: ") and "s3cret" not in line
    assert "\n" not in line and "Connect call failed" in line


def test_every_change_of_state_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "inkwell.replicas")
    replica = Replica(0, Mock(url="postgresql+asyncpg://u@h:5433/db"), ReadSessions(Mock(), 0))
    found = Replicas(ReadSessions(Mock(), 0), [replica], max_lag=5.0, interval=1.0)
    found.observe(replica, None, None, OSError("Connect call failed ('h', 5433)\nmore"))
    found.observe(replica, None, None, OSError("again"))  # no change: no line
    found.samples.append((time.monotonic(), 100))
    found.observe(replica, 100, None)
    lines = [r.getMessage() for r in caplog.records if r.name == "inkwell.replicas"]
    assert lines == [
        "replica h:5433/db is down (OSError: Connect call failed ('h', 5433))",
        "replica h:5433/db is ok (0.0 s behind)",
    ]


def test_a_replica_is_not_up_to_date_with_a_primary_reading_older_than_the_limit() -> None:
    replica = Replica(0, Mock(), ReadSessions(Mock(), 0))
    found = Replicas(ReadSessions(Mock(), 0), [replica], max_lag=5.0, interval=1.0)
    found.samples.append((time.monotonic() - 10, 300))  # the primary not read since
    found.observe(replica, 300, None)
    assert replica.state is State.LAGGING and (replica.lag or 0) >= 10
    found.samples.append((time.monotonic(), 300))
    found.observe(replica, 300, None)
    assert (replica.state, replica.lag) == (State.OK, 0.0)


async def test_the_monitor_goes_on_after_a_check_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = Replicas(ReadSessions(Mock(), 0), [], max_lag=5.0, interval=0.001)
    monitor = ReplicaMonitor(found, make_url("postgresql+asyncpg://u@h/db"))
    second = asyncio.Event()
    calls = 0

    async def check() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug\nwith a second line")
        second.set()
        await asyncio.Event().wait()  # until cancelled

    monitor.check = check  # type: ignore[method-assign]
    task = asyncio.create_task(monitor.run())
    try:
        async with asyncio.timeout(30):
            await second.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    lines = [r.getMessage() for r in caplog.records if r.name == "inkwell.replicas"]
    assert lines == ["replica check failed: RuntimeError: a bug"]
