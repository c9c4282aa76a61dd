"""The data layer: migrations equal the models, cascades, UTC datetimes, versions, seeding."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, InvalidRequestError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Base, Comment, Post, Tag, User
from db.seed import DatabaseNotEmpty, SeedSize, seed
from settings import Settings
from tests.truth import digest

SMALL = SeedSize(users=8, posts_per_user=3, comments_per_post=2, tags=5, tags_per_post=2)
TABLES = {"users", "posts", "comments", "tags", "post_tags"}


@pytest.fixture
async def engine(fresh_db_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(Settings(database_url=fresh_db_url))
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


async def test_migration_creates_exactly_the_models_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"compare_type": True, "include_name": migrate.is_mapped}
                ),
                Base.metadata,
            )
        )
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        indexes = await conn.run_sync(
            lambda sync: {i["name"] for t in TABLES for i in inspect(sync).get_indexes(t)}
        )
    assert diff == []
    assert names >= TABLES
    assert {
        "ix_posts_author_id",
        "ix_comments_post_id",
        "ix_comments_author_id",
        "ix_post_tags_tag_id",
    } <= indexes


async def test_migration_is_reversible(engine: AsyncEngine) -> None:
    await migrate.downgrade(engine, "base")
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert not names & TABLES
    await migrate.upgrade(engine)


async def test_deleting_a_user_cascades_in_the_database(engine: AsyncEngine) -> None:
    await seed(engine, SMALL)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM users WHERE id = 1"))
        left = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM posts WHERE author_id = 1) + "
                "(SELECT count(*) FROM comments WHERE author_id = 1) + "
                "(SELECT count(*) FROM comments c LEFT JOIN posts p ON p.id = c.post_id "
                " WHERE p.id IS NULL) + "
                "(SELECT count(*) FROM post_tags pt LEFT JOIN posts p ON p.id = pt.post_id "
                " WHERE p.id IS NULL)"
            )
        )
        assert left.scalar() == 0


async def test_orm_delete_relies_on_database_cascade(engine: AsyncEngine) -> None:
    await seed(engine, SMALL)
    sessions = create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        post = await session.get(Post, 1)
        assert post is not None
        await session.delete(post)  # passive_deletes: no SELECT of comments, the DB cascades
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM comments WHERE post_id = 1")) == 0
        assert await conn.scalar(text("SELECT count(*) FROM post_tags WHERE post_id = 1")) == 0


async def test_server_defaults_utc_datetimes_and_versions(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    before = datetime.now(UTC) - timedelta(seconds=5)
    async with sessions() as session, session.begin():
        user = User(email="new@example.com", name="New")
        session.add(user)
        await session.flush()  # eager_defaults: server-set values come back via RETURNING
        assert user.id >= 1 and user.version == 1 and user.role == "member" and user.is_active
        assert user.created_at.tzinfo is not None and user.created_at.utcoffset() == timedelta(0)
        assert before <= user.created_at <= datetime.now(UTC) + timedelta(seconds=5)
        user.name = "Renamed"
        await session.flush()
        assert user.version == 2
    async with sessions() as session:
        loaded = await session.get(User, user.id)
        assert loaded is not None and loaded.version == 2 and loaded.name == "Renamed"
        assert loaded.created_at == user.created_at
        with pytest.raises(InvalidRequestError):
            _ = loaded.posts  # lazy="raise": relationship reads go through DataLoaders


async def test_naive_datetimes_are_refused(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        session.add(User(email="n@example.com", name="N", created_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            await session.flush()


async def test_email_and_tag_name_are_unique(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    for model, values in ((User, {"email": "a@example.com", "name": "A"}), (Tag, {"name": "t"})):
        async with sessions() as session:
            session.add_all([model(**values), model(**values)])
            with pytest.raises(IntegrityError):
                await session.commit()


async def test_seed_is_deterministic_sized_and_realistic(engine: AsyncEngine) -> None:
    report = await seed(engine, SMALL)
    assert (report.users, report.posts, report.comments, report.tags, report.post_tags) == (
        8,
        24,
        48,
        5,
        48,
    )
    first = await digest(engine)
    with pytest.raises(DatabaseNotEmpty):
        await seed(engine, SMALL)
    await seed(engine, SMALL, replace=True)
    assert await digest(engine) == first
    await seed(engine, dataclasses.replace(SMALL, seed=7), replace=True)
    assert await digest(engine) != first
    async with engine.connect() as conn:
        statuses = set((await conn.execute(select(Post.status).distinct())).scalars())
        assert statuses == {"draft", "published"}
        assert (
            await conn.scalar(
                select(func.count())
                .select_from(Post)
                .where((Post.status == "published") != Post.published_at.is_not(None))
            )
            == 0
        )
        emails = (await conn.execute(select(User.email))).scalars().all()
        assert all(e == e.strip().lower() for e in emails)
        assert await conn.scalar(select(func.count()).select_from(Comment)) == 48


async def test_ids_continue_after_seeded_rows(engine: AsyncEngine) -> None:
    await seed(engine, SMALL)
    sessions = create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        user = User(email="after@example.com", name="After")
        session.add(user)
        await session.flush()
        assert user.id == 9


async def test_sqlite_connections_enforce_foreign_keys_with_wal(engine: AsyncEngine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite connection settings")
    async with engine.connect() as conn:
        assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 5000
        with pytest.raises(IntegrityError):
            await conn.execute(
                text("INSERT INTO posts (author_id, title, content) VALUES (424242, 't', 'c')")
            )
