"""Log lines an operator can search, as the real app writes them, rendered by the real JSON
formatter and parsed line by line: one line per operation with its request id, type, name,
status, duration, SQL statements, error codes and viewer; the SQL log; the rate limit on
identical warnings during a database outage (a real server process)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from schema.telemetry import logs
from server import create_app
from settings import Settings
from tests.conftest import (
    ADMIN_ID,
    OWNER,
    TEST_SECRET,
    App,
    app_settings,
    bearer,
    prepare_write_db,
    running_app,
)
from tests.live import free_port, live_server

QUERY = "{ posts(first: 1) { nodes { id } } }"
NESTED = "query Nested { users(first: 3) { nodes { name posts(first: 2) { nodes { title } } } } }"


@contextmanager
def json_lines() -> Iterator[list[dict[str, Any]]]:
    """Every line Inkwell's loggers write in the block, as ``LOG_FORMAT=json`` renders it,
    each parsed as one JSON object (filled when the block ends)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(json=True))
    inkwell = logging.getLogger("inkwell")
    level = inkwell.level
    inkwell.setLevel(logging.DEBUG)
    inkwell.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        inkwell.removeHandler(handler)
        inkwell.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def operation_lines(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line["logger"] == "inkwell.operation" and line["request_id"] == request_id
    ]


async def post(
    app: App, body: Any, request_id: str | None = None, **headers: str
) -> httpx.Response:
    if request_id is not None:
        headers["x-request-id"] = request_id
    return await app.client.post("/graphql", json=body, headers=headers)


async def test_each_operation_is_one_line_with_its_request_id_name_and_costs(api: App) -> None:
    with json_lines() as lines:
        response = await post(api, {"query": NESTED}, "client-chosen-1")
        counted = api.count()  # by the engine's cursor events: every statement, once
        failed = await post(api, {"query": "query Broken { users(first: 1) { nope } }"}, "c-2")
    assert response.headers["x-request-id"] == "client-chosen-1"
    body = response.json()
    [line] = operation_lines(lines, "client-chosen-1")
    assert line["level"] == "info" and line["transport"] == "http"
    assert (line["operation_type"], line["operation_name"], line["status"]) == (
        "query",
        "Nested",
        200,
    )
    assert line["duration_ms"] > 0 and line["viewer_id"] == ADMIN_ID
    assert line["sql_statements"] == counted == body["extensions"]["sql"]["statements"] >= 2
    assert line["sql_ms"] > 0 and line["error_codes"] == []
    assert {"timestamp", "pid", "message"} <= line.keys()
    assert failed.headers["x-request-id"] == "c-2"
    [line] = operation_lines(lines, "c-2")
    assert line["operation_name"] == "Broken" and line["sql_statements"] == 0
    assert line["error_codes"] == ["GRAPHQL_VALIDATION_FAILED"]


async def test_an_unsafe_or_missing_request_id_is_replaced_by_a_generated_one(api: App) -> None:
    with json_lines() as lines:
        unsafe = await post(api, {"query": "{ __typename }"}, "x" * 129)
        spaced = await post(api, {"query": "{ __typename }"}, "two words")
        missing = await post(api, {"query": "{ __typename }"})
        refused = await api.client.post(
            "/graphql", content=b"{", headers={"content-type": "application/json"}
        )
    ids = [r.headers["x-request-id"] for r in (unsafe, spaced, missing, refused)]
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in ids) and len(set(ids)) == 4
    for rid in ids[:3]:
        [line] = operation_lines(lines, rid)
        assert line["operation_type"] == "query" and line["operation_name"] is None
    [line] = operation_lines(lines, ids[3])
    assert line["status"] == 400 and line["operation_type"] is None


async def test_lines_written_during_an_operation_carry_its_request_id(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schema.domains.users import types as users

    def broken(row: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(users.User, "from_row", broken)
    with json_lines() as lines:
        body = (await post(api, {"query": '{ user(id: "1") { name } }'}, "with-error")).json()
    error_id = body["errors"][0]["extensions"]["errorId"]
    [logged] = [line for line in lines if line["logger"] == "inkwell.errors"]
    assert logged["request_id"] == "with-error" and error_id in logged["message"]
    assert "RuntimeError: injected" in logged["exception"]
    [line] = operation_lines(lines, "with-error")
    assert line["level"] == "warning" and line["error_codes"] == ["INTERNAL_SERVER_ERROR"]


async def test_a_mutation_line_names_its_viewer(write_app: App) -> None:
    create = 'mutation Create { createPost(input: {title: "Logged"}) { __typename } }'
    headers = bearer(write_app.settings, OWNER)
    # The engine's first connection runs the dialect's own start-up queries: not these.
    await write_app.data("{ viewer { id } }", as_user=OWNER)
    write_app.statements.clear()
    with json_lines() as lines:
        await post(write_app, {"query": create}, "mutation-1", **headers)
    [line] = operation_lines(lines, "mutation-1")
    assert (line["operation_type"], line["operation_name"]) == ("mutation", "Create")
    # Every statement of the unit of work, through SQLAlchemy (the tests' counter sees them).
    assert line["viewer_id"] == OWNER and line["sql_statements"] == write_app.count() >= 2


def test_websocket_operations_have_a_line_each_with_the_connections_id(fresh_db_url: str) -> None:
    asyncio.run(prepare_write_db(fresh_db_url))
    settings = app_settings(fresh_db_url)
    subscription = 'subscription Follow { postUpdated(id: "UG9zdDox") { title } }'
    with (
        json_lines() as lines,
        TestClient(create_app(settings)) as http,
        http.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"x-request-id": "sock-1"}
        ) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        query = {"query": "query Over { __typename }"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": query})
        assert ws.receive_json()["type"] == "next"
        assert ws.receive_json() == {"id": "1", "type": "complete"}
        ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": subscription}})
        while http.app.state.broker.subscription_count < 1:  # type: ignore[attr-defined]
            time.sleep(0.01)
        ws.send_json({"id": "2", "type": "complete"})
        while http.app.state.broker.subscription_count > 0:  # type: ignore[attr-defined]
            time.sleep(0.01)
    socket_lines = operation_lines(lines, "sock-1")
    assert [(line["operation_type"], line["operation_name"]) for line in socket_lines] == [
        ("query", "Over"),
        ("subscription", "Follow"),
    ]
    assert {line["transport"] for line in socket_lines} == {"ws"}


async def test_the_sql_log_shows_each_statement_once_with_the_request_id(read_db_url: str) -> None:
    async with running_app(app_settings(read_db_url, db_echo=True), user_id=ADMIN_ID) as app:
        assert not app.engine.echo  # SQLAlchemy's own echo would write each statement again
        await app.data("{ __typename }")  # the viewer remembered, where the cache is fed
        with json_lines() as lines:
            body = (await post(app, {"query": NESTED}, "sql-1")).json()
    statements = [
        line for line in lines if line["logger"] == "inkwell.sql" and line["request_id"] == "sql-1"
    ]
    assert len(statements) == body["extensions"]["sql"]["statements"] >= 2
    assert all(line["level"] == "info" and line["sql_ms"] >= 0 for line in statements)
    assert all("\n" not in line["sql"] and "parameters" in line for line in statements)
    reads = [line for line in statements if "FROM posts" in line["sql"]]
    assert reads, statements
    # On PostgreSQL a query's reads run on the driver, which SQLAlchemy's echo never saw.
    expected = "sqlalchemy" if app.settings.is_sqlite else "driver"
    assert {line["via"] for line in reads} == {expected}


async def test_production_hides_parameters_and_logs_only_slow_statements(read_db_url: str) -> None:
    settings = Settings(
        database_url=read_db_url,
        environment="production",
        jwt_secret=TEST_SECRET,
        db_slow_statement_ms=0.000001,
    )
    async with running_app(settings) as app:
        with json_lines() as lines:
            await post(app, {"query": NESTED}, "slow-1")
    slow = [line for line in lines if line["logger"] == "inkwell.sql"]
    assert slow and all(line["request_id"] == "slow-1" for line in slow)
    assert all(line["level"] == "warning" and line["message"] == "slow statement" for line in slow)
    assert all("parameters" not in line for line in slow)


def test_a_database_outage_logs_one_line_per_interval_with_a_count() -> None:
    """A server whose database refuses connections: every request fails with
    SERVICE_UNAVAILABLE and logs the same warning. Each kind of line is written at most once
    per LOG_REPEAT_SECONDS (and once more, late, for the lines no later one reports), each
    standing for itself and ``repeated`` more: no occurrence is lost. Every operation still
    has its own line."""
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/inkwell"
    output: list[str] = []
    sent = 0
    with live_server(
        output,
        DATABASE_URL=dead,
        JWT_SECRET=TEST_SECRET,
        LOG_FORMAT="json",
        LOG_REPEAT_SECONDS="2",
        METRICS_SAMPLE_SECONDS="0.5",
    ) as base:
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=30) as client:
            for burst in (40, 1):
                for _ in range(burst):
                    body = client.post("/graphql", json={"query": QUERY}).json()
                    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
                    sent += 1
                time.sleep(3)  # the interval passes: the lines left out are written by then
        intervals = (time.monotonic() - started) // 2 + 1
    # uvicorn's own lines keep uvicorn's format here (`uvicorn server:app`, its own flags).
    lines = [json.loads(line) for line in output[0].splitlines() if line.startswith("{")]
    outage = [line for line in lines if line["message"].startswith("database unavailable")]
    assert sum(1 + line.get("repeated", 0) for line in outage) == sent
    assert 2 <= len(outage) <= 2 * intervals < sent / 3, outage
    operations = [line for line in lines if line["logger"] == "inkwell.operation"]
    assert len(operations) == sent
    assert all(line["error_codes"] == ["SERVICE_UNAVAILABLE"] for line in operations)
