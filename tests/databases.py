"""Throwaway databases for tests: a temporary SQLite file, or a fresh PostgreSQL database.

PostgreSQL runs when ``TEST_DATABASE_URL`` is set (CI sets it and ``INKWELL_REQUIRE_POSTGRES=1``,
so a missing server fails the run instead of skipping it). Each throwaway PostgreSQL database is
created next to the one in ``TEST_DATABASE_URL`` and dropped afterwards.

The suite runs in parallel (pytest-xdist): every name here carries the worker's id and a random
part, so workers never share a database, and a database left behind names its worker.
"""

from __future__ import annotations

import os
import shutil
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

#: This process's pytest-xdist worker ("gw0", "gw1", ...), or "main" when not distributed.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@asynccontextmanager
async def throwaway_database(
    backend: str, tmp_dir: Path, *, template: str | None = None
) -> AsyncIterator[str]:
    """Yield the URL of a new database of ``backend``, empty or, given ``template`` (the URL of
    a database of the same backend that nothing is connected to), a copy of it; delete it on
    exit. A copy costs a file copy on SQLite and ``CREATE DATABASE ... TEMPLATE`` on
    PostgreSQL, several times less than migrating and seeding again."""
    if backend == "sqlite":
        path = tmp_dir / f"inkwell-{WORKER}-{uuid.uuid4().hex[:8]}.db"
        if template is not None:
            copy_sqlite_file(Path(make_url(template).database or ""), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert POSTGRES_URL is not None
    name = f"inkwell_test_{WORKER}_{uuid.uuid4().hex[:12]}"
    source = f' TEMPLATE "{make_url(template).database}"' if template is not None else ""
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"{source}'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def copy_sqlite_file(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` (closed: its engine disposed) to ``target``. Closing
    the last connection checkpoints the WAL into the main file and removes it; should a WAL be
    left, it is copied too, so the copy holds every committed row either way."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + "-wal"))


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
