"""Throwaway databases for tests: a temporary SQLite file, or a fresh PostgreSQL database.

PostgreSQL runs when ``TEST_DATABASE_URL`` is set (CI sets it and ``INKWELL_REQUIRE_POSTGRES=1``,
so a missing server fails the run instead of skipping it). Each throwaway PostgreSQL database is
created next to the one in ``TEST_DATABASE_URL`` and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("INKWELL_REQUIRE_POSTGRES") == "1"

if REQUIRE_POSTGRES and not POSTGRES_URL:
    raise RuntimeError("INKWELL_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")

BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@asynccontextmanager
async def throwaway_database(backend: str, tmp_dir: Path) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database of ``backend``; delete it on exit."""
    if backend == "sqlite":
        path = tmp_dir / f"inkwell-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert POSTGRES_URL is not None
    name = f"inkwell_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def end_listener(engine: AsyncEngine) -> None:
    """Terminate the server's LISTEN connection to ``engine``'s database, as a restart or an
    administrator would; asserts there was exactly one."""
    async with engine.connect() as conn:
        ended = await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'inkwell-listener' AND datname = current_database()"
            )
        )
        assert ended.all() == [(True,)]
