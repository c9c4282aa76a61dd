"""Run Alembic migrations from code (the serve and migrate commands, and the tests).

Source: Alembic cookbook, "Programmatic API use (connection sharing) With Asyncio".
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` pointing at ``db/migrations``; ``connection`` is shared with env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision in ``db/migrations``: what a fully migrated database is at."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database behind ``conn`` is at (``None``: never migrated)."""
    return await conn.run_sync(
        lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
    )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Migrate the database behind ``engine`` down to ``revision`` (``"base"``: empty)."""
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync_conn: command.downgrade(alembic_config(sync_conn), revision)
        )
