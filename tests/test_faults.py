"""Faults: the database goes away under load and comes back; the pool runs dry."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import OWNER, TEST_SECRET, App, app_settings, prepare_write_db, running_app
from tests.live import Live, live_server
from tests.postgres_server import postgres_server
from tests.truth import digest, table
from tests.wsclient import post_graphql, wait_for_metric

QUERY = {"query": "{ users(first: 5) { totalCount nodes { name } } }"}


def unavailable(body: dict[str, Any]) -> bool:
    return body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == [
        "SERVICE_UNAVAILABLE"
    ]


async def test_a_database_outage_under_load_is_a_clean_error_and_the_server_recovers(
    backend: str,
) -> None:
    if backend != "postgresql":
        pytest.skip("stops and starts a PostgreSQL server of its own")
    with postgres_server() as database:
        await prepare_write_db(database.url)
        env = {"DATABASE_URL": database.url, "JWT_SECRET": TEST_SECRET, "DB_POOL_TIMEOUT": "3"}
        with live_server(**env) as base:
            async with httpx.AsyncClient(base_url=base, timeout=15) as client:

                async def load(stop: asyncio.Event) -> list[tuple[int, dict[str, Any]]]:
                    answers = []
                    while not stop.is_set():
                        response = await client.post("/graphql", json=QUERY)
                        answers.append((response.status_code, response.json()))
                        await asyncio.sleep(0.02)
                    return answers

                assert "errors" not in (await client.post("/graphql", json=QUERY)).json()
                stop = asyncio.Event()
                loaders = [asyncio.create_task(load(stop)) for _ in range(4)]
                await asyncio.sleep(0.3)
                await asyncio.to_thread(database.stop)
                await asyncio.sleep(0.5)
                assert unavailable((await client.post("/graphql", json=QUERY)).json())
                assert (await client.get("/readyz")).status_code == 503
                await asyncio.to_thread(database.start)
                for _ in range(150):  # recovers by itself: the pool is replaced, no restart
                    if "errors" not in (await client.post("/graphql", json=QUERY)).json():
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the server did not recover within 15 s of the database")
                stop.set()
                answers = [a for task in loaders for a in await task]
                # The LISTEN connection finds its way back too (with its own backoff, so it
                # may come after the reads, which retry at once); then the server is ready.
                await wait_for_metric(base, "inkwell_event_listener_reconnects", 1)
                assert (await client.get("/readyz")).status_code == 200
    assert {status for status, _ in answers} == {200}
    outcomes = {"ok" if "errors" not in body else unavailable(body) for _, body in answers}
    assert outcomes <= {"ok", True}, [b for _, b in answers if "errors" in b][:3]
    assert "ok" in outcomes and True in outcomes


async def test_an_exhausted_pool_fails_requests_cleanly_after_its_timeout(write_app: App) -> None:
    """Every pooled connection held elsewhere: a request waits DB_POOL_TIMEOUT, then gets
    SERVICE_UNAVAILABLE, and works again once a connection is back."""
    if write_app.settings.is_sqlite:
        pytest.skip("the pool settings are PostgreSQL's")
    settings = app_settings(
        write_app.settings.database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5
    )
    async with running_app(settings) as app:
        held = await app.engine.connect()
        try:
            await held.exec_driver_sql("SELECT 1")
            body = await app.gql(QUERY["query"])
            assert unavailable(body)
        finally:
            await held.close()
        assert "errors" not in await app.gql(QUERY["query"])


async def test_an_operation_past_its_deadline_is_stopped_and_nothing_is_kept(
    write_app: App,
) -> None:
    settings = app_settings(
        write_app.settings.database_url,
        request_timeout_seconds=0.001,
        db_statement_timeout_seconds=2.5,
    )
    before = await digest(write_app.engine)
    async with running_app(settings) as app:
        create = 'mutation { createPost(input: {title: "Late", publish: true}) { __typename } }'
        for query in (QUERY["query"], create):
            body = await app.gql(query, as_user=OWNER)
            assert body["data"] is None
            assert [e["extensions"]["code"] for e in body["errors"]] == ["REQUEST_TIMEOUT"]
        if not settings.is_sqlite:
            async with app.engine.connect() as conn:
                assert (await conn.exec_driver_sql("SHOW statement_timeout")).scalar() == "2500ms"
    assert await digest(write_app.engine) == before
    # The pool is healthy afterwards: the normal app answers.
    assert "errors" not in await write_app.gql(QUERY["query"])


async def test_a_client_that_leaves_mid_mutation_gets_nothing_applied(live: Live) -> None:
    """The mutation waits for a row lock the test holds; the client gives up and goes; once
    the lock is released, the operation is cancelled and rolled back, and its pooled
    connection is back, idle (not left inside a transaction)."""
    if live.url.startswith("sqlite"):
        pytest.skip("needs PostgreSQL's row locks to hold a mutation mid-way")
    rows = await table(live.engine, "SELECT id, title FROM posts WHERE author_id = :u", u=OWNER)
    post = rows[0]
    update = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename } }"""
    variables = {"i": {"id": str(post["id"]), "expectedVersion": 1, "title": "Never kept"}}
    async with live.engine.connect() as locker:
        await locker.execute(
            text("SELECT 1 FROM posts WHERE id = :p FOR UPDATE"), {"p": post["id"]}
        )
        async with httpx.AsyncClient(base_url=live.base, timeout=1.0) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(
                    "/graphql",
                    json={"query": update, "variables": variables},
                    headers=live.headers(OWNER),
                )
        await asyncio.sleep(0.3)  # the server sees the disconnect
        await locker.rollback()  # the lock goes; the cancelled mutation finishes its statement
    for _ in range(50):
        states = await table(
            live.engine,
            "SELECT state FROM pg_stat_activity WHERE application_name = 'inkwell' "
            "AND datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        if not states:
            break
        await asyncio.sleep(0.1)
    assert states == []
    [after] = await table(
        live.engine, "SELECT title, version FROM posts WHERE id = :p", p=post["id"]
    )
    assert after == {"title": post["title"], "version": 1}
    # The server is fine: the same update goes through now.
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as client:
        body = await post_graphql(client, update, variables, headers=live.headers(OWNER))
    assert body["data"]["updatePost"]["__typename"] == "PostPayload"
