"""The per-operation session: serialised for concurrent resolvers, always returned to the pool."""

from __future__ import annotations

import asyncio
import base64

import pytest
from sqlalchemy import func, select

from schema.context import Context
from schema.reads import fetch
from tests.conftest import App

SIBLINGS = """{
  a: users(first: 5) { totalCount nodes { name posts(first: 2) { totalCount nodes { title } }
                                       comments(first: 2) { totalCount nodes { body } } } }
  b: posts(first: 5) { totalCount nodes { author { name } tags { name }
                                          comments(first: 2) { nodes { author { name } } } } }
  c: tags(first: 5) { nodes { name posts(first: 1) { totalCount } } }
  d: node(id: "VXNlcjox") { id }
  e: userByEmail(email: "lonely@example.com") { name }
  f: tag(name: "python") { name }
  g: post(id: "3") { title }
}"""


async def test_sibling_dataloaders_in_the_same_tick_share_the_session_safely(api: App) -> None:
    # Root fields run concurrently and each starts DataLoaders in the same event-loop tick;
    # without the per-operation lock, asyncpg raises "another operation is in progress".
    data = await api.data(SIBLINGS)
    assert len(data["a"]["nodes"]) == 5 and data["d"]["id"] == "VXNlcjox"


async def test_concurrent_requests_get_their_own_results(api: App) -> None:
    async def one(n: int) -> None:
        gid = base64.b64encode(f"User:{n}".encode()).decode()
        data = await api.data(
            "query($id: ID!) { user(id: $id) { id posts(first: 3) { nodes { id } } } }", {"id": gid}
        )
        assert data["user"]["id"] == gid

    await asyncio.gather(*(one(n) for n in range(1, 41)))


async def test_every_connection_is_checked_back_in_after_many_requests(api: App) -> None:
    requests = [
        {"query": SIBLINGS},  # success, many loaders
        {"query": "{ posts(first: 1000) { totalCount } }"},  # argument error before SQL
        {"query": '{ posts(first: 3) { nodes { id } } bad: node(id: "!!") { id } }'},  # partial
        {"query": "{ users(first: 2) { nodes { nope } } }"},  # validation error
        {"query": "{ users(first: 2"},  # syntax error
    ]

    async def send(i: int) -> int:
        response = await api.client.post("/graphql", json=requests[i % len(requests)])
        return response.status_code

    statuses: list[int] = []
    for start in range(0, 200, 25):
        statuses += await asyncio.gather(*(send(i) for i in range(start, start + 25)))
    assert len(statuses) == 200 and set(statuses) <= {200, 400}
    assert api.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_an_ended_operation_lets_go_of_its_loaders_and_rows(read_db_url: str) -> None:
    from db.engine import create_engine, create_sessionmaker
    from schema import build_schema
    from schema.context import Context, OperationEnded
    from settings import Settings

    settings = Settings(database_url=read_db_url)
    engine = create_engine(settings)
    try:
        context = Context(settings=settings, sessionmaker=create_sessionmaker(engine))
        result = await build_schema(settings).execute(
            "{ users(first: 3) { nodes { posts(first: 2) { nodes { author { name } } } } } }",
            context_value=context,
        )
        assert result.errors is None
        # Loader caches (and the rows in them) are dropped when the operation ends, not when
        # the cycle collector finds the context; the session is closed and stays closed.
        assert context.loaders._loaders == {}
        assert not context.has_session
        with pytest.raises(OperationEnded):
            async with context.session():
                pass
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_a_query_begins_no_transaction_and_a_mutation_one(api: App) -> None:
    """No BEGIN/ROLLBACK round trips for a query on PostgreSQL: its reads run on the driver,
    outside any transaction, so each statement is a transaction of its own and two get two
    transaction ids; a mutation's two statements share one."""
    if api.settings.is_sqlite:
        pytest.skip("SQLite keeps its BEGIN: it costs no round trip")
    for read_only, transactions in ((True, 2), (False, 1)):
        context = Context(
            settings=api.settings,
            sessionmaker=api.app.state.sessionmaker,
            read_sessions=api.app.state.read_sessions,
            read_only=read_only,
        )
        try:
            seen = set()
            for _ in range(2):
                seen.update(await fetch.scalars(context, select(func.txid_current())))
        finally:
            await context.close()
        assert len(seen) == transactions, (read_only, seen)
