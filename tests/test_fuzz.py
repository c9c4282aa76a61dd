"""Schemathesis fuzzes every operation of the live server, anonymous and signed in, with a
fixed seed: no 5xx, no masked (unexpected) error, every response conforming to the schema.

``positive_data_acceptance`` is left out: it counts any error for type-valid input as a
failure, and rejecting type-valid but meaningless input (an empty ID, both `first` and
`last`, a page of 6 million rows) with a typed error is exactly what the API is meant to do.
A failure prints schemathesis's report, with a curl command to reproduce each case.
Source: Schemathesis docs, "GraphQL" and "Checks".
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import OWNER, TEST_SECRET, prepare_write_db
from tests.live import Live, live_server

#: Cases per operation and run: 30 operations x 25 x 2 runs = 1,500 cases per database.
EXAMPLES = 25
SEED = 20261201


async def test_fuzzing_every_operation_finds_no_server_error(fresh_db_url: str) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is a test dependency (pip install -e '.[test]')"
    await prepare_write_db(fresh_db_url)
    log: list[str] = []
    with live_server(log, DATABASE_URL=fresh_db_url, JWT_SECRET=TEST_SECRET) as base:
        live = Live(base, fresh_db_url, None, TEST_SECRET)  # type: ignore[arg-type]
        for headers in ([], ["-H", f"Authorization: Bearer {live.token(OWNER)}"]):
            command = [
                cli,
                "run",
                f"{base}/graphql",
                "--seed",
                str(SEED),
                "--max-examples",
                str(EXAMPLES),
                "--phases",
                "fuzzing,stateful",
                "--exclude-checks",
                "positive_data_acceptance",
                "--generation-database",
                "none",
                *headers,
            ]
            run = await asyncio.to_thread(
                subprocess.run, command, capture_output=True, text=True, timeout=600
            )
            report = run.stdout[-6000:] + run.stderr[-2000:]
            assert run.returncode == 0, report
            assert "30 passed" in run.stdout, report
    # Nothing was masked: the server logs every unexpected error it hid from a client.
    assert "unexpected error" not in log[0], log[0][-4000:]
    assert "Traceback" not in log[0], log[0][-4000:]
