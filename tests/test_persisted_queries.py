"""Automatic persisted queries (Apollo's protocol) and the allow-list of a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schema.engine.extensions.persisted_queries import MANIFEST_FORMAT, sha256
from server import create_app
from settings import Settings
from tests.conftest import TEST_SECRET, App, app_settings, prepare_write_db, running_app
from tests.live import live_server
from tests.wsclient import ws_client

QUERY = "{ users(first: 2) { totalCount } }"
HASH = sha256(QUERY)
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}


async def post(app: App, body: dict[str, Any]) -> dict[str, Any]:
    response = await app.client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_a_hash_is_unknown_until_sent_with_its_query_then_runs_over_get(
    read_db_url: str,
) -> None:
    async with running_app(app_settings(read_db_url)) as app:
        missing = await post(app, {"extensions": PERSISTED})
        assert missing["errors"][0]["message"] == "PersistedQueryNotFound"
        assert code(missing) == "PERSISTED_QUERY_NOT_FOUND"
        registered = await post(app, {"query": QUERY, "extensions": PERSISTED})
        assert registered["data"]["users"]["totalCount"] == 61
        assert (await post(app, {"extensions": PERSISTED}))["data"] == registered["data"]
        # By hash over GET, as a CDN would cache it (with the preflight header: CSRF).
        response = await app.client.get(
            "/graphql",
            params={"extensions": json.dumps(PERSISTED)},
            headers={"accept": "application/json", "graphql-require-preflight": "1"},
        )
        assert response.status_code == 200 and response.json()["data"] == registered["data"]


async def test_a_hash_that_does_not_match_or_is_malformed_is_refused(read_db_url: str) -> None:
    async with running_app(app_settings(read_db_url)) as app:
        wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha256("{ viewer { id } }")}}
        assert code(await post(app, {"query": QUERY, "extensions": wrong})) == (
            "PERSISTED_QUERY_HASH_MISMATCH"
        )
        # The mismatched text was not stored under either hash.
        assert code(await post(app, {"extensions": wrong})) == "PERSISTED_QUERY_NOT_FOUND"
        bad = {"persistedQuery": {"version": 1, "sha256Hash": "not-hex"}}
        assert code(await post(app, {"extensions": bad})) == "BAD_REQUEST"
    off = app_settings(read_db_url, persisted_queries=False)
    async with running_app(off) as app:
        assert code(await post(app, {"extensions": PERSISTED})) == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_with_a_manifest_only_its_operations_run(read_db_url: str, tmp_path: Path) -> None:
    manifest = tmp_path / "operations.json"
    operations = [{"id": HASH, "name": "Users", "type": "query", "body": QUERY}]
    manifest.write_text(
        json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": operations})
    )
    async with running_app(app_settings(read_db_url, operation_manifest=manifest)) as app:
        assert "errors" not in await post(app, {"extensions": PERSISTED})  # known without text
        assert "errors" not in await post(app, {"query": QUERY})
        other = "{ viewer { id } }"
        assert code(await post(app, {"query": other})) == "OPERATION_NOT_ALLOWED"
        sent = {"persistedQuery": {"version": 1, "sha256Hash": sha256(other)}}
        assert code(await post(app, {"query": other, "extensions": sent})) == (
            "OPERATION_NOT_ALLOWED"
        )


def test_a_malformed_manifest_stops_the_server_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "operations.json"
    operations = [{"id": "0" * 64, "name": "Forged", "type": "query", "body": QUERY}]
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "operations": operations}))
    with pytest.raises(SystemExit) as stopped:
        create_app(Settings(operation_manifest=manifest))
    assert stopped.value.code == 2
    assert "OPERATION_MANIFEST" in capsys.readouterr().err


async def test_the_allow_list_holds_over_websockets_too(fresh_db_url: str, tmp_path: Path) -> None:
    manifest = tmp_path / "operations.json"
    operations = [{"id": HASH, "name": "Users", "type": "query", "body": QUERY}]
    manifest.write_text(
        json.dumps({"format": MANIFEST_FORMAT, "version": 1, "operations": operations})
    )
    await prepare_write_db(fresh_db_url)
    env = {"DATABASE_URL": fresh_db_url, "JWT_SECRET": TEST_SECRET}
    with live_server(OPERATION_MANIFEST=str(manifest), **env) as base:
        async with ws_client(base) as client:
            operation = await client.subscribe("subscription { postPublished { id } }")
            refused = await client.receive()
    assert refused["type"] == "error" and refused["id"] == operation
    assert refused["payload"][0]["extensions"]["code"] == "OPERATION_NOT_ALLOWED"
