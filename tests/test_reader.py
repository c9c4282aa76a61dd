"""Reads on the driver (``db.reader``): the same rows as the ORM, in the same shapes; driver
errors as SQLAlchemy's; a connection the server dropped is replaced without failing the read;
reads run on the connection the operation's session holds, wherever its binds say, at any
burst size without an error line; a query's session, reset at its end, is the next one's."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from db import models, reader
from db.read_sessions import ReadSessions
from schema.context import Context
from schema.errors import RequestTimeout
from schema.reads import fetch
from schema.relay.pagination import Ordering, PageArgs
from tests.conftest import App
from tests.truth import table

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def postgres_only(api: App) -> None:
    if api.settings.is_sqlite:
        pytest.skip("reads on the driver are PostgreSQL's (asyncpg)")


def context(api: App, *, read_only: bool) -> Context:
    return Context(
        settings=api.settings,
        sessionmaker=api.app.state.sessionmaker,
        read_sessions=api.app.state.read_sessions,
        read_only=read_only,
    )


@asynccontextmanager
async def query_context(api: App) -> AsyncIterator[Context]:
    """A query operation's context, closed (its session too) when the block ends."""
    ctx = context(api, read_only=True)
    try:
        yield ctx
    finally:
        await ctx.close()


async def both(
    api: App, statement: Any, params: dict[str, Any] | None = None
) -> tuple[list[Any], list[Any]]:
    """``statement``'s rows read on the driver and through the ORM session."""
    driver, orm = context(api, read_only=True), context(api, read_only=False)
    assert driver.reads_on_driver and not orm.reads_on_driver
    try:
        return (
            list(await fetch.rows(driver, statement, params)),
            list(await fetch.rows(orm, statement, params)),
        )
    finally:
        await driver.close()
        await orm.close()


def columns(entity: Any, row: Any) -> dict[str, Any]:
    """The loaded column attributes of ``row`` (an ORM object or a driver row)."""
    names = [c.key for c in entity.__mapper__.column_attrs if not c.deferred]
    return {name: getattr(row, name) for name in names}


async def test_entity_rows_hold_what_the_mapped_objects_hold(api: App) -> None:
    statement = select(models.User).where(models.User.id <= 20).order_by(models.User.id)
    driver, orm = await both(api, statement)
    assert len(driver) == len(orm) == 20
    for (on_driver,), (mapped,) in zip(driver, orm, strict=True):
        assert not isinstance(on_driver, models.User)
        assert columns(models.User, on_driver) == columns(models.User, mapped)
        assert on_driver.created_at.tzinfo is not None  # aware UTC, as UTCDateTime promises
    # The deferred password hash is not loaded on either path.
    assert not hasattr(driver[0][0], "password_hash")


@pytest.mark.parametrize("backwards", [False, True])
async def test_windowed_pages_and_joined_rows_have_the_orms_shapes(
    api: App, backwards: bool
) -> None:
    ctx = context(api, read_only=True)
    args = PageArgs(ordering=Ordering(), limit=3, backwards=backwards)
    paged = fetch.windowed_page_statement(ctx, models.Post, models.Post.author_id, [], args)
    driver, orm = await both(api, paged, {fetch.KEYS: [1, 2, 3]})
    assert len(driver) == len(orm) > 0
    for (row, parent), (mapped, mapped_parent) in zip(driver, orm, strict=True):
        assert parent == mapped_parent
        assert columns(models.Post, row) == columns(models.Post, mapped)
    link = models.post_tags
    joined = (
        select(link.c.post_id, models.Tag)
        .join(models.Tag, models.Tag.id == link.c.tag_id)
        .where(link.c.post_id <= 5)
        .order_by(link.c.post_id, models.Tag.id)
    )
    driver, orm = await both(api, joined)
    assert [(p, columns(models.Tag, t)) for p, t in driver] == [
        (p, columns(models.Tag, t)) for p, t in orm
    ]
    counted = select(models.Post.author_id, func.count()).group_by(models.Post.author_id)
    driver, orm = await both(api, counted.order_by(models.Post.author_id))
    assert driver == [tuple(row) for row in orm]


async def test_expanding_in_lists_are_read_on_the_driver_with_the_orms_answers(
    api: App,
) -> None:
    # An IN list of literal values is rendered per call, as Connection.execute renders it;
    # one statement object run with lists of other lengths still binds each in full.
    user = models.User
    statement = select(user.id).where(user.id.in_([3, 1, 2])).order_by(user.id)
    driver, orm = await both(api, statement)
    assert driver == [tuple(row) for row in orm] == [(1,), (2,), (3,)]
    keys = bindparam("ids", expanding=True)
    shared = select(reader.Projection(user, frozenset({"bio"}))).where(user.id.in_(keys))
    ctx = context(api, read_only=True)
    try:
        for ids in ([5], [2, 4], [1, 2, 3, 4, 5, 6, 7]):
            rows = await fetch.rows(ctx, shared.order_by(user.id), {"ids": ids})
            assert [row.id for (row,) in rows] == ids
            assert all(row.bio is reader.OMITTED for (row,) in rows)
    finally:
        await ctx.close()


async def test_an_entity_with_relabelled_columns_is_read_on_the_driver(api: App) -> None:
    """An entity after a column of the same name gets relabelled columns (``id_1``); the
    driver path maps them by the columns they are (a joined author: ``schema.reads.folding``)."""
    statement = (
        select(models.Post.author_id, models.User)
        .join(models.User, models.User.id == models.Post.author_id)
        .order_by(models.Post.id)
        .limit(3)
    )
    ctx = context(api, read_only=True)
    try:
        rows = await ctx.read(statement)
    finally:
        await ctx.close()
    truth = await table(
        api.engine,
        "SELECT u.id, u.name, u.version FROM posts p JOIN users u ON u.id = p.author_id "
        "ORDER BY p.id LIMIT 3",
    )
    assert [(author_id, user.id, user.name, user.version) for author_id, user in rows] == [
        (row["id"], row["id"], row["name"], row["version"]) for row in truth
    ]


async def test_a_connection_the_server_dropped_is_replaced_and_the_read_succeeds(
    api: App,
) -> None:
    ctx = context(api, read_only=True)
    try:
        pid = (await fetch.scalars(ctx, select(func.pg_backend_pid())))[0]
        killer = context(api, read_only=False)
        try:
            await killer.run(
                lambda session: session.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                )
            )
        finally:
            await killer.close()
        # The session's connection is dead: the read notices, invalidates it and reads again.
        again = (await fetch.scalars(ctx, select(func.pg_backend_pid())))[0]
        assert again != pid
        assert (await fetch.scalars(ctx, select(func.count()).select_from(models.User)))[0] > 0
    finally:
        await ctx.close()


async def test_driver_errors_are_sqlalchemys_and_a_statement_timeout_is_a_request_timeout(
    api: App,
) -> None:
    ctx = context(api, read_only=True)
    try:
        with pytest.raises(DBAPIError) as raised:
            await fetch.scalars(ctx, select(func.sqrt(-1)))
        assert raised.value.orig.sqlstate == "2201F"  # type: ignore[union-attr]
        assert not raised.value.connection_invalidated
        # The connection is still good after an error in a statement.
        assert (await fetch.scalars(ctx, select(func.abs(-2))))[0] == 2
        # On the operation's read connection (the session has a connection of its own).
        setting = (await fetch.scalars(ctx, select(func.current_setting("statement_timeout"))))[0]
        await fetch.scalars(ctx, select(func.set_config("statement_timeout", "50ms", False)))
        with pytest.raises(RequestTimeout):
            await fetch.scalars(ctx, select(func.pg_sleep(1)))
        await fetch.scalars(ctx, select(func.set_config("statement_timeout", setting, False)))
    finally:
        await ctx.close()


async def test_projected_rows_hold_the_kept_columns_and_mark_the_others(api: App) -> None:
    # Column pruning (schema.reads.pruning): a projection's row reads as the entity's, its
    # left-out columns holding OMITTED.
    user = models.User
    pruned = select(reader.Projection(user, frozenset({"bio"}))).where(user.id <= 5)
    ctx = context(api, read_only=True)
    try:
        driver = list(await fetch.rows(ctx, pruned.order_by(user.id)))
    finally:
        await ctx.close()
    _, whole = await both(api, select(user).where(user.id <= 5).order_by(user.id))
    assert len(driver) == len(whole) == 5
    for (got,), (want,) in zip(driver, whole, strict=True):
        assert got.bio is reader.OMITTED
        expected, actual = columns(user, want), columns(user, got)
        del expected["bio"], actual["bio"]
        assert actual == expected


async def test_a_query_reads_on_the_connection_its_session_holds(api: App) -> None:
    # One unit of work: the driver reads and the session's own statements share a connection.
    ctx = context(api, read_only=True)
    try:
        on_driver = (await fetch.scalars(ctx, select(func.pg_backend_pid())))[0]
        assert ctx.has_session
        in_session = await ctx.run(lambda session: session.scalar(text("SELECT pg_backend_pid()")))
        assert on_driver == in_session
    finally:
        await ctx.close()
    # The session's statement began a transaction: closing rolled it back (in a greenlet,
    # db.checkout), so the connection went back to the pool idle. Asked on a connection of
    # its own: the pool may hand that very connection out again, which then reads itself
    # as "active".
    observer = create_async_engine(api.settings.database_url, poolclass=NullPool)
    try:
        states = await table(
            observer, "SELECT state FROM pg_stat_activity WHERE pid = :pid", pid=on_driver
        )
    finally:
        await observer.dispose()
    assert [row["state"] for row in states] == ["idle"]


async def test_a_query_checks_out_and_returns_its_connection_without_a_greenlet(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # db.checkout: with an idle pooled connection, neither end of a query's session needs
    # AsyncSession's greenlet path; the connection still comes back to the pool.
    pool: Any = api.engine.sync_engine.pool
    # An idle connection in the pool; and after a connection of it was invalidated (other
    # tests drop some), its next size() checkouts take the greenlet.
    for _ in range(pool.size() + 1):
        await api.data("{ users(first: 1) { nodes { name } } }")
    greenlet_paths: list[str] = []
    for name in ("connection", "close"):
        original = getattr(AsyncSession, name)

        async def spy(self: AsyncSession, *args: Any, _n: str = name, _o: Any = original) -> Any:
            greenlet_paths.append(_n)
            return await _o(self, *args)

        monkeypatch.setattr(AsyncSession, name, spy)
    data = await api.data("{ users(first: 2) { nodes { name } } }")
    assert len(data["users"]["nodes"]) == 2
    assert greenlet_paths == []
    assert pool.checkedout() == 0


async def test_the_sessions_bind_decides_where_a_query_reads(api: App) -> None:
    # A session bound elsewhere (as a replica's would be) takes the driver reads with it.
    elsewhere = create_async_engine(
        api.settings.database_url,
        connect_args={"server_settings": {"application_name": "inkwell-elsewhere"}},
    )
    try:
        ctx = Context(
            settings=api.settings,
            sessionmaker=api.app.state.sessionmaker,
            read_sessions=ReadSessions(async_sessionmaker(elsewhere), keep=1),
            read_only=True,
        )
        try:
            name = await fetch.scalars(ctx, select(func.current_setting("application_name")))
            assert name == ["inkwell-elsewhere"]
        finally:
            await ctx.close()
        assert elsewhere.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await elsewhere.dispose()


async def test_a_burst_beyond_the_pool_checks_out_and_returns_without_an_error_line(
    api: App, caplog: pytest.LogCaptureFixture
) -> None:
    pool: Any = api.engine.sync_engine.pool
    burst = 3 * (pool.size() + api.settings.db_max_overflow)
    with caplog.at_level(logging.DEBUG):
        answers = await asyncio.gather(
            *(api.data("{ users(first: 3) { nodes { name } } }") for _ in range(burst))
        )
    assert all(len(data["users"]["nodes"]) == 3 for data in answers)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "MissingGreenlet" not in caplog.text
    assert pool.checkedout() == 0
    assert api.app.state.read_sessions.kept <= pool.size()  # bounded, whatever the burst


async def test_a_querys_session_reset_at_its_end_is_the_next_querys(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # db.read_sessions: one session object serves query after query, each time as good as new.
    sessions: ReadSessions = api.app.state.read_sessions
    made: list[AsyncSession] = []
    given: list[AsyncSession] = []
    maker, give_back = sessions.maker, sessions.give_back
    monkeypatch.setattr(sessions, "maker", lambda: made.append(maker()) or made[-1])
    monkeypatch.setattr(sessions, "give_back", lambda s: given.append(s) or give_back(s))
    for _ in range(4):
        assert (
            len((await api.data("{ users(first: 2) { nodes { name } } }"))["users"]["nodes"]) == 2
        )
    assert len(made) <= 1  # at most one new session: none may have been kept yet
    assert len(given) == 4 and len(set(map(id, given))) == 1
    # Whatever an operation left in its session is gone when the next one gets it.
    async with query_context(api) as ctx:
        await fetch.scalars(ctx, select(func.pg_backend_pid()))
        async with ctx.session() as session:
            session.add(models.Tag(name="left-over"))
    assert given[-1] is session
    async with query_context(api) as ctx:
        async with ctx.session() as again:
            assert again is session
            assert not again.new and len(again.identity_map) == 0
            assert not again.in_transaction()  # no connection yet: the read checks one out
        assert len(await fetch.scalars(ctx, select(models.Tag.id))) > 0


async def test_a_session_closed_on_the_greenlet_path_is_not_used_again(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A statement of the session's own began a transaction: closing it needs the rollback's
    # round trip (AsyncSession.close), and such a session is dropped, not given back.
    sessions: ReadSessions = api.app.state.read_sessions
    given: list[AsyncSession] = []
    monkeypatch.setattr(sessions, "give_back", given.append)
    async with query_context(api) as ctx:
        await fetch.scalars(ctx, select(func.pg_backend_pid()))
        await ctx.run(lambda session: session.execute(text("SELECT 1")))
    assert given == []
    with pytest.raises(ValueError, match="reset"):
        session = sessions()
        try:
            await session.execute(text("SELECT 1"))
            give_back = ReadSessions(sessions.maker, keep=1).give_back
            give_back(session)
        finally:
            await session.close()


async def test_connections_a_restart_dropped_reconnect_without_a_stray_coroutine(
    api: App, recwarn: pytest.WarningsRecorder
) -> None:
    # Every pooled connection of the app ends, as in a database restart: each idle one is
    # found dead at its next read, invalidated, and the read runs again on a new connection.
    pool: Any = api.engine.sync_engine.pool
    contexts = [context(api, read_only=True) for _ in range(pool.size())]
    for ctx in contexts:  # every connection of the pool checked out once
        await fetch.scalars(ctx, select(func.pg_backend_pid()))
    for ctx in contexts:
        await ctx.close()
    async with api.engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "application_name = 'inkwell' AND datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )
    for _ in range(2 * pool.size() + 2):
        data = await api.data("{ users(first: 1) { nodes { name } } }")
        assert len(data["users"]["nodes"]) == 1
    gc.collect()
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
