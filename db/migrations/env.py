"""Alembic environment: shares the caller's connection, or connects with the app's settings.

``db.migrate.upgrade`` passes its connection in ``config.attributes`` (no second engine, and it
works inside a running event loop); the ``alembic`` command line has none, so this opens the
async engine from ``DATABASE_URL``. Source: Alembic's ``async`` template and cookbook.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from db.migrate import is_mapped
from db.models import Base
from settings import get_settings

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # The search objects are the migrations' alone (db.migrate.SEARCH_OBJECTS).
        include_name=is_mapped,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    from db.engine import create_engine

    engine = create_engine(get_settings())
    async with engine.begin() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (shared := context.config.attributes.get("connection")) is not None:
    run_migrations(shared)
else:
    asyncio.run(run_async_migrations())
