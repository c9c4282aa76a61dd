"""GraphQL over HTTP: the spec's public audit suite (graphql-http's serverAudits) against the
live server, with no errors and no warnings (tests/http_audit/audit.mjs)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET, prepare_write_db
from tests.databases import REQUIRE_POSTGRES
from tests.live import live_server

AUDIT = Path(__file__).resolve().parent / "http_audit"


async def test_the_graphql_over_http_audits_pass(fresh_db_url: str) -> None:
    node = shutil.which("node")
    if node is None or not (AUDIT / "node_modules" / "graphql-http").is_dir():
        if REQUIRE_POSTGRES:  # CI: everything must run
            pytest.fail("node and tests/http_audit/node_modules are needed (make test installs)")
        pytest.skip("no node, or graphql-http not installed (make test installs it)")
    await prepare_write_db(fresh_db_url)
    with live_server(DATABASE_URL=fresh_db_url, JWT_SECRET=TEST_SECRET) as base:
        audit = await asyncio.to_thread(
            subprocess.run,
            [node, "audit.mjs", f"{base}/graphql"],
            cwd=AUDIT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "0 warnings, 0 errors" in audit.stdout, audit.stdout
