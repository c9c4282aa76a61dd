"""Browsers against a live server, in Debian's Chromium through playwright-core (tests/browser):
GraphiQL as Inkwell serves it (no CDN: every request stays on the loopback), and a page on
another origin using Apollo Client 4 over HTTP and graphql-ws (CORS)."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from db.seed import ADMIN_EMAIL, DEMO_PASSWORD
from schema.auth.tokens import issue_token
from settings import Settings
from tests.conftest import ADMIN_ID, TEST_SECRET, prepare_write_db
from tests.databases import REQUIRE_POSTGRES
from tests.live import live_server
from tests.wsclient import metric, post_graphql, wait_for_metric

BROWSER = Path(__file__).resolve().parent / "browser"
CHROMIUM = "/usr/bin/chromium"
SUBSCRIBERS = "inkwell_subscriptions_active"
#: Seconds the test waits for each message of a browser script.
SCRIPT_TIMEOUT = 120
#: What openPage (tests/browser/browser.mjs) reports of a page that went well.
NO_PROBLEMS: dict[str, list[str]] = {"consoleErrors": [], "pageErrors": [], "offLoopback": []}

CREATE_DRAFT = """mutation($t: String!) { createPost(input: {title: $t}) {
  __typename ... on PostPayload { post { id version } } } }"""
UPDATE_POST = """mutation($id: ID!, $v: Int!, $t: String!) {
  updatePost(input: {id: $id, expectedVersion: $v, title: $t}) { __typename } }"""


@pytest.fixture
def node() -> str:
    """The node binary, with tests/browser installed and Chromium present; else skip (fail
    where everything must run: CI)."""
    node = shutil.which("node")
    if node is None or not (BROWSER / "node_modules" / "playwright-core").is_dir():
        missing = "node and tests/browser/node_modules (make test installs them)"
    elif not Path(CHROMIUM).exists():
        missing = f"Chromium at {CHROMIUM} (.ci/run installs Debian's)"
    else:
        return node
    if REQUIRE_POSTGRES:  # CI: everything must run
        pytest.fail(f"the browser tests need {missing}")
    pytest.skip(f"the browser tests need {missing}")


def admin_headers(url: str) -> dict[str, str]:
    settings = Settings(database_url=url, jwt_secret=TEST_SECRET)
    return {"Authorization": f"Bearer {issue_token(settings, ADMIN_ID).token}"}


class Script:
    """A browser script (``node tests/browser/<name>``) speaking JSON lines: ``receive`` the
    next message it prints, ``send`` one to its stdin. Its stderr is kept for failures."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), SCRIPT_TIMEOUT)
        if not line:
            assert self.process.stderr is not None
            errors = (await self.process.stderr.read()).decode()
            pytest.fail(f"the browser script ended early: {errors}")
        message: dict[str, Any] = json.loads(line)
        assert message.get("step") != "failed", message
        return message

    async def data(self, step: str) -> dict[str, Any]:
        """The next message, which must be ``step``'s GraphQL response without errors;
        its ``data``."""
        message = await self.receive()
        assert message["step"] == step, message
        assert "errors" not in message["response"], message
        data: dict[str, Any] = message["response"]["data"]
        return data

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()


@asynccontextmanager
async def script(node: str, name: str, config: dict[str, Any]) -> AsyncIterator[Script]:
    process = await asyncio.create_subprocess_exec(
        node,
        name,
        json.dumps(config),
        cwd=BROWSER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Script(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_graphiql_runs_queries_and_signed_in_subscriptions_from_its_own_files(
    node: str, fresh_db_url: str
) -> None:
    await prepare_write_db(fresh_db_url)
    headers = admin_headers(fresh_db_url)
    with live_server(DATABASE_URL=fresh_db_url, JWT_SECRET=TEST_SECRET) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # The admin's draft: its events reach only its author (and admins).
            created = await post_graphql(client, CREATE_DRAFT, {"t": "Draft"}, headers=headers)
            draft = created["data"]["createPost"]["post"]
            config = {
                "base": base,
                "email": ADMIN_EMAIL,
                "password": DEMO_PASSWORD,
                "draft": draft["id"],
                "screenshot": "/tmp/inkwell-graphiql.png",
            }
            async with script(node, "graphiql.mjs", config) as browser:
                assert (await browser.data("query"))["posts"]["totalCount"] > 0
                login = (await browser.data("login"))["login"]
                assert login["__typename"] == "AuthPayload"
                assert (await browser.data("viewer"))["viewer"]["role"] == "ADMIN"

                before = await asyncio.to_thread(metric, base, SUBSCRIBERS)
                assert (await browser.receive())["step"] == "subscribed"
                await wait_for_metric(base, SUBSCRIBERS, before + 1)
                title = "Heard in GraphiQL"
                variables = {"id": draft["id"], "v": draft["version"], "t": title}
                changed = await post_graphql(client, UPDATE_POST, variables, headers=headers)
                assert changed["data"]["updatePost"]["__typename"] == "PostPayload"
                await browser.send({"title": title})

                event = await browser.receive()
                assert event["response"]["data"]["postUpdated"] == {
                    "title": title,
                    "version": draft["version"] + 1,
                }
                # The Headers tab's token went in the socket's connection_init.
                assert event["inits"] == [{"Authorization": f"Bearer {login['token']}"}]
                # With other headers in the tab, the next subscription has a socket of its own.
                done = await browser.receive()
                assert done["inits"] == [{"Authorization": f"Bearer {login['token']}"}, {}]
                assert done["problems"] == NO_PROBLEMS


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port (a thread); yield the origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def build_apollo_page(node: str, into: Path) -> None:
    """Bundle ``tests/browser/apollo-page.js`` (Apollo Client 4, graphql-ws) with esbuild into
    ``into/app.js``, beside an ``index.html`` that loads it (``build-apollo-page.mjs``)."""
    subprocess.run([node, "build-apollo-page.mjs", str(into)], cwd=BROWSER, check=True, timeout=60)


async def test_an_apollo_client_app_on_another_origin_queries_mutates_and_subscribes(
    node: str, fresh_db_url: str, tmp_path: Path
) -> None:
    await prepare_write_db(fresh_db_url)
    headers = admin_headers(fresh_db_url)
    await asyncio.to_thread(build_apollo_page, node, tmp_path)
    with (
        static_site(tmp_path) as origin,
        live_server(
            DATABASE_URL=fresh_db_url, JWT_SECRET=TEST_SECRET, CORS_ALLOWED_ORIGINS=origin
        ) as base,
    ):
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await post_graphql(client, CREATE_DRAFT, {"t": "Draft"}, headers=headers)
            draft = created["data"]["createPost"]["post"]["id"]
        settings = {
            "api": base,
            "token": headers["Authorization"].removeprefix("Bearer "),
            "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
            "draft": draft,
        }
        page = f"{origin}/index.html#{quote(json.dumps(settings))}"
        async with script(node, "apollo.mjs", {"page": page}) as browser:
            before = await asyncio.to_thread(metric, base, SUBSCRIBERS)
            subscribed = await browser.receive()
            result = subscribed["result"]
            # The query over HttpLink, with the token and traceparent (preflighted).
            assert result["errors"] == [], subscribed
            assert result["viewer"]["role"] == "ADMIN", subscribed
            # The subscription over GraphQLWsLink, signed in by connectionParams.
            await wait_for_metric(base, SUBSCRIBERS, before + 1)
            await browser.send({"action": "mutate"})
            done = await browser.receive()
            result = done["result"]
            assert result["errors"] == [], done
            assert result["mutation"]["__typename"] == "PostPayload", done
            assert result["event"]["title"] == "Heard by Apollo", done
            assert done["problems"] == NO_PROBLEMS
