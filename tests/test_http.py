"""Serving: POST and GET, GraphiQL, health endpoints, extensions.sql, error masking."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import event

from db import migrate
from schema import build_schema
from schema.engine.extensions import validated_documents
from server import SCHEMA_FILE, export_schema
from settings import Settings
from tests.conftest import TEST_SECRET, App, app_settings, running_app


async def test_get_query(api: App) -> None:
    # As urql's default client sends it: a GET with only an Accept header.
    response = await api.client.get(
        "/graphql",
        params={"query": "{ users(first: 1) { totalCount } }"},
        headers={"accept": "application/graphql-response+json, application/json"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["users"]["totalCount"] == 61


async def test_operations_a_page_could_forge_cross_site_are_refused(api: App) -> None:
    """Form or text POSTs need no CORS preflight and could run anonymous mutations from a
    victim's browser, so an operation sent that way must carry a preflight header; a JSON
    POST needs none, and a GET (queries only, anonymous without a preflight) passes."""
    query = "{ viewer { id } }"
    forged = [
        api.client.post("/graphql", data={"query": query}),
        api.client.post("/graphql", content=query, headers={"content-type": "text/plain"}),
        api.client.post("/graphql", content=f'{{"query": "{query}"}}'),  # no Content-Type
    ]
    for request in forged:
        response = await request
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTED"
    assert api.count() == 0
    preflighted = await api.client.post(
        "/graphql", data={"query": query}, headers={"apollo-require-preflight": "true"}
    )
    # Past the CSRF check (then refused as a Content-Type GraphQL over HTTP does not define).
    assert preflighted.json()["errors"][0]["extensions"]["code"] != "CSRF_PREVENTED"
    read = await api.client.get("/graphql", params={"query": query})
    assert read.status_code == 200 and "errors" not in read.json()


async def test_cors_answers_only_the_configured_origins(read_db_url: str) -> None:
    settings = app_settings(read_db_url, cors_allowed_origins=["https://app.example.com"])
    async with running_app(settings) as app:
        preflight = {"access-control-request-method": "POST"}
        for origin, allowed in (("https://app.example.com", True), ("https://evil.test", False)):
            response = await app.client.options("/graphql", headers={"origin": origin, **preflight})
            granted = response.headers.get("access-control-allow-origin")
            assert (granted == origin) is allowed, response.headers


async def test_graphiql_page_has_a_default_query_and_opens_no_session(api: App) -> None:
    # Connections checked out while the page is served, counted by the pool's own event: the
    # shared app's background work (the outbox's pruner) may hold one at any other moment.
    checkouts: list[object] = []
    pool = api.engine.sync_engine.pool
    listener = lambda *args: checkouts.append(args)  # noqa: E731
    event.listen(pool, "checkout", listener)
    try:
        response = await api.client.get("/graphql", headers={"accept": "text/html"})
    finally:
        event.remove(pool, "checkout", listener)
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
    assert "RecentWriting" in response.text
    assert api.count() == 0
    assert checkouts == []


async def test_default_graphiql_query_runs(api: App) -> None:
    from schema.transport.graphiql import DEFAULT_QUERY

    data = await api.data(DEFAULT_QUERY)
    assert data["users"]["edges"]


async def test_health_and_readiness(api: App) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_readiness_is_503_when_the_database_is_unreachable(tmp_path: Any) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    async with running_app(Settings(database_url=url, db_pool_timeout=1)) as app:
        response = await app.client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}


async def test_readiness_is_503_until_the_database_is_migrated(fresh_db_url: str) -> None:
    async with running_app(Settings(database_url=fresh_db_url)) as app:
        response = await app.client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not migrated"}
        await migrate.upgrade(app.engine)
        assert (await app.client.get("/readyz")).json() == {"status": "ready"}


async def test_sql_stats_in_development(api: App) -> None:
    body = await api.gql("{ users(first: 3) { nodes { posts(first: 2) { nodes { id } } } } }")
    assert body["extensions"]["sql"]["statements"] == api.sign_in + 2
    assert body["extensions"]["sql"]["durationMs"] >= 0


async def test_no_sql_stats_and_no_graphiql_in_production(read_db_url: str) -> None:
    settings = Settings(database_url=read_db_url, environment="production", jwt_secret=TEST_SECRET)
    async with running_app(settings) as app:
        body = await app.gql("{ users(first: 1) { totalCount } }")
        assert "extensions" not in body or "sql" not in body["extensions"]
        page = await app.client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404


async def test_unexpected_errors_are_masked_and_logged(
    api: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from schema.domains.users import types as users

    def broken(row: Any) -> Any:
        raise RuntimeError("secret internals: SELECT * FROM users")

    monkeypatch.setattr(users.User, "from_row", broken)
    with caplog.at_level(logging.ERROR, logger="inkwell.errors"):
        body = await api.gql('{ user(id: "1") { name } }')
    [error] = body["errors"]
    assert error["message"] == "Unexpected error."
    assert "secret" not in str(body)
    error_id = error["extensions"]["errorId"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_syntax_and_validation_errors_are_shown(api: App) -> None:
    response = await api.client.post("/graphql", json={"query": "{ users(first: 1) { nope } }"})
    assert "Cannot query field 'nope'" in response.json()["errors"][0]["message"]
    response = await api.client.post("/graphql", json={"query": "{ users("})
    assert "Syntax Error" in response.json()["errors"][0]["message"]
    response = await api.client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def test_committed_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text() == export_schema(Settings()), (
        "schema.graphql is stale: run `python server.py export-schema`"
    )


def test_schema_does_not_depend_on_environment() -> None:
    dev = build_schema(Settings(environment="development")).as_str()
    prod = build_schema(Settings(environment="production", jwt_secret=TEST_SECRET)).as_str()
    assert dev == prod


async def test_http_refusals_are_graphql_errors_with_a_code(api: App) -> None:
    """A batch, a body that is not JSON and a mutation over GET are refused as JSON errors."""
    refused = [
        await api.client.post("/graphql", json=[{"query": "{ viewer { id } }"}] * 2),
        await api.client.post(
            "/graphql", content=b"{not json", headers={"content-type": "application/json"}
        ),
        await api.client.get(
            "/graphql",
            params={"query": "mutation { deletePost(input: {id: 1}) { __typename } }"},
            headers={"graphql-require-preflight": "1"},
        ),
    ]
    for response in refused:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert api.count() == 0


async def test_a_document_is_validated_once_per_text(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    validate = validated_documents.validate  # graphql-core's, as ValidatedDocuments calls it

    def counted(*args: Any, **options: Any) -> Any:
        calls.append(args[1])
        return validate(*args, **options)

    monkeypatch.setattr(validated_documents, "validate", counted)
    alias = f"a{uuid.uuid4().hex}"  # a text no other test sent
    invalid = f"{{ {alias}: users(first: 1) {{ nodes {{ nope }} }} }}"
    for _ in range(3):
        body = await api.gql(invalid)
        assert body["errors"][0]["message"].startswith("Cannot query field 'nope'")
    valid = f"{{ {alias}: users(first: 1) {{ nodes {{ name }} }} }}"
    for _ in range(2):
        assert len((await api.data(valid))[alias]["nodes"]) == 1
    assert len(calls) == 2  # once per text
