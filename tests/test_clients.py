"""The GraphQL clients frontends use, driven against a live server: Apollo Client, urql with
Graphcache, Relay (relay-compiler and relay-runtime), graphql-ws, graphql-sse, and GraphQL
Code Generator over the exported schema.

Each client is an npm package in ``tests/clients`` (installed from its lock file by ``make
test``) with a suite of its own for node's test runner (``<client>.test.mjs``); each suite is
one test here, run per backend against a fresh server over a freshly seeded database, so a
failure names the client that broke. The suites get the endpoint and bearer tokens (issued
here, for the seed's owner and admin) as environment variables. Without node or the npm
packages these tests are skipped, except where ``INKWELL_REQUIRE_POSTGRES=1`` (CI) fails them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from schema.auth.tokens import issue_token
from tests.conftest import ADMIN_ID, OWNER, TEST_SECRET, app_settings
from tests.databases import REQUIRE_POSTGRES
from tests.live import live_server

CLIENTS = Path(__file__).resolve().parent / "clients"
#: How long one client's suite may run (each takes a few seconds).
SUITE_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, once ``tests/clients`` has its packages; skips (or, in CI, fails)
    otherwise."""
    path = shutil.which("node")
    if path is None or not (CLIENTS / "node_modules" / ".package-lock.json").is_file():
        if REQUIRE_POSTGRES:  # CI: everything must run
            pytest.fail("node and tests/clients/node_modules are needed (make test installs them)")
        pytest.skip("no node, or tests/clients not installed (make test installs it)")
    return path


@pytest.fixture
async def seeded_db(node: str, write_db_url: str) -> str:
    """A database of its own seeded with ``WRITE_SEED`` (user 1 the admin, 2 the owner of
    what the suites change; a copy of the prepared template, see ``write_db_url``); only
    once node and the packages are there (``node`` is set up first)."""
    return write_db_url


async def run_suite(node: str, suite: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``tests/clients/<suite>.test.mjs`` with node's test runner (spec reporter) and the
    given environment, in a thread so the event loop stays free."""
    return await asyncio.to_thread(
        subprocess.run,
        [node, "--test", "--test-reporter=spec", f"{suite}.test.mjs"],
        cwd=CLIENTS,
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_SECONDS,
    )


async def check_client(node: str, db_url: str, suite: str) -> None:
    """Start a server on ``db_url``, run ``suite`` against it with the owner's and the admin's
    tokens, and stop the server; on failure show the suite's report and the server's log
    (where an "Unexpected error." has its errorId and traceback)."""
    settings = app_settings(db_url)
    log: list[str] = []
    with live_server(log, DATABASE_URL=db_url, JWT_SECRET=TEST_SECRET) as base:
        result = await run_suite(
            node,
            suite,
            {
                "INKWELL_URL": f"{base}/graphql",
                "INKWELL_TOKEN": issue_token(settings, OWNER).token,
                "INKWELL_ADMIN_TOKEN": issue_token(settings, ADMIN_ID).token,
            },
        )
    server_log = "".join(log).strip()
    assert result.returncode == 0, f"the {suite} suite failed:\n{result.stdout}{result.stderr}" + (
        f"\n--- server log ---\n{server_log}" if server_log else ""
    )


async def test_apollo_client(node: str, seeded_db: str) -> None:
    """Apollo Client 4: relayStylePagination with fetchMore, persisted queries over GET (miss,
    retry, cacheable hit), an optimistic update, subscriptions over GraphQLWsLink and over
    multipart HTTP, and a two-field mutation resolving to RolledBack and a typed error."""
    await check_client(node, seeded_db, "apollo")


async def test_urql_graphcache(node: str, seeded_db: str) -> None:
    """urql 6 with Graphcache and default options: GET queries with only an Accept header,
    relayPagination merging pages, a mutation signed in through fetchOptions, and how errors
    (validation, a bad token's 401) reach it."""
    await check_client(node, seeded_db, "urql")


async def test_relay(node: str, seeded_db: str) -> None:
    """relay-compiler over schema.graphql, then relay-runtime: a @connection paged with the
    generated @refetchable query, node(id:), typed errors leaving the stored Post intact, and
    @prependNode / @deleteEdge."""
    await check_client(node, seeded_db, "relay")


async def test_graphql_ws(node: str, seeded_db: str) -> None:
    """graphql-ws: every connection_init credential shape signs in; unreadable ones get 4403."""
    await check_client(node, seeded_db, "graphql-ws")


async def test_graphql_sse(node: str, seeded_db: str) -> None:
    """graphql-sse (distinct connections): a signed-in subscription event over SSE."""
    await check_client(node, seeded_db, "graphql-sse")


async def test_graphql_codegen(node: str) -> None:
    """GraphQL Code Generator types operations from schema.graphql, and tsc accepts code
    using them (no server: the exported schema is the input)."""
    result = await run_suite(node, "codegen", {})
    assert result.returncode == 0, f"codegen failed:\n{result.stdout}{result.stderr}"
