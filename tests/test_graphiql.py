"""GraphiQL served by Inkwell itself (schema.transport.graphiql): the vendored files match their
manifest, are served with their types and a long cache life, nothing else under the static path
is, the page loads only its own files, and development (only) sends / to GraphiQL and prints how
to sign in there. The browser tests are in test_graphiql_browser.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import cli
import cli.serve
import server
from schema.transport import graphiql
from settings import Settings
from tests.conftest import TEST_SECRET, running_app

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION: dict[str, Any] = {"environment": "production", "jwt_secret": TEST_SECRET}


@asynccontextmanager
async def client_for(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app over an empty SQLite file (these requests never query it)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"
    async with running_app(Settings(database_url=url, **settings)) as app:
        yield app.client


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(tmp_path, jwt_secret=TEST_SECRET) as client:
        yield client


def test_the_vendored_files_match_the_manifest() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update-graphiql"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


async def test_every_asset_is_served_with_its_type_hash_and_cache_life(
    dev: httpx.AsyncClient,
) -> None:
    for role, asset in graphiql.ASSETS.items():
        response = await dev.get(f"/graphql/static/{asset.file}")
        assert response.status_code == 200, role
        kind = "text/css" if asset.file.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(kind)
        assert graphiql.sri(response.content) == asset.integrity
        immutable = role != "inkwell"  # vendored names carry their version; ours does not
        assert ("immutable" in response.headers["cache-control"]) is immutable
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/graphql/static/nope.js",
        "/graphql/static/..%2Fassets.json",
        "/graphql/static/%2e%2e%2f__init__.py",
        "/graphql/static/..%2F..%2F..%2Fsettings.py",
        "/graphql/static/",
    ],
)
async def test_nothing_else_is_served(dev: httpx.AsyncClient, path: str) -> None:
    assert (await dev.get(path)).status_code == 404


async def test_the_page_loads_only_its_own_files_with_their_hashes(dev: httpx.AsyncClient) -> None:
    page = await dev.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "RecentWriting" in page.text  # the default query
    # Every URL the page loads is its own static path (or the data: favicon).
    assert not re.search(r"(?:src|href)=\"(?!graphql/static/|data:)", page.text)
    loaded = re.findall(r'(?:src|href)="(graphql/static/[^"]+)" integrity="([^"]+)"', page.text)
    assert sorted(loaded) == sorted(
        (f"graphql/static/{a.file}", a.integrity) for a in graphiql.ASSETS.values()
    )


async def test_development_sends_the_root_to_graphiql(dev: httpx.AsyncClient) -> None:
    response = await dev.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/graphql"


async def test_without_graphiql_there_is_no_redirect_and_no_static_files(tmp_path: Path) -> None:
    async with client_for(tmp_path, **PRODUCTION) as client:
        assert (await client.get("/")).status_code == 404
        asset = graphiql.ASSETS["graphiql.js"].file
        assert (await client.get(f"/graphql/static/{asset}")).status_code == 404


@pytest.mark.parametrize("production", [False, True])
def test_serve_prints_graphiql_and_the_demo_sign_in_in_development_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], production: bool
) -> None:
    url = "sqlite+aiosqlite:///unused.db"  # serving is faked: nothing opens it
    settings = Settings(database_url=url, **(PRODUCTION if production else {}))

    async def prepared(settings: Settings, *, migrate_first: bool) -> str:
        return "head"

    monkeypatch.setattr(cli, "configured", lambda: settings)
    monkeypatch.setattr(cli.serve, "prepare", prepared)
    monkeypatch.setattr(cli.serve, "check_address", lambda host, port: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    assert server.main(["serve", "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert "inkwell: GraphQL at http://127.0.0.1:8123/graphql" in out  # the start-up banner
    if production:
        assert "inkwell: GraphiQL off" in out
        assert "GraphiQL:" not in out and "inkwell-demo" not in out
    else:
        assert "GraphiQL: http://127.0.0.1:8123/graphql" in out
        assert 'email: "admin@example.com", password: "inkwell-demo"' in out
        assert '{"Authorization": "Bearer <token>"}' in out
