"""Failures on the read path end in clear errors, keep healthy data, and leak nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import App


class PoolWatch:
    """Counts new connections and invalidated ones on an engine's pool."""

    def __init__(self, app: App) -> None:
        self.connects = 0
        self.invalidated = 0
        self.engine = app.engine.sync_engine

    def _connect(self, *args: Any) -> None:
        self.connects += 1

    def _invalidate(self, *args: Any) -> None:
        self.invalidated += 1

    def __enter__(self) -> PoolWatch:
        event.listen(self.engine, "connect", self._connect)
        event.listen(self.engine, "invalidate", self._invalidate)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "connect", self._connect)
        event.remove(self.engine, "invalidate", self._invalidate)


@pytest.fixture
def watch(api: App) -> Iterator[PoolWatch]:
    with PoolWatch(api) as pool_watch:
        yield pool_watch
    assert api.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


SIBLING_SURVIVES = """{
  a: user(id: "1") { posts(first: 2) { nodes { id } } comments(first: 1000) { totalCount } }
  b: user(id: "1") { name posts(first: 2) { nodes { id } } comments(first: 3) { nodes { id } } }
}"""
ALL_FAIL = """{ users(first: 5) { nodes {
  a: posts(first: 2) { nodes { id tags { name } } } b: comments(first: 1000) { totalCount } } } }"""


async def test_a_failing_nested_field_keeps_healthy_siblings(api: App, watch: PoolWatch) -> None:
    for _ in range(25):
        body = await api.gql(SIBLING_SURVIVES)
        assert body["data"]["a"] is None
        assert body["data"]["b"]["name"] and len(body["data"]["b"]["posts"]["nodes"]) == 2
        [error] = body["errors"]
        assert error["path"] == ["a", "comments"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    for _ in range(25):
        body = await api.gql(ALL_FAIL)
        assert body["data"] is None
        assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    assert watch.invalidated == 0, "a cancelled statement must not cost a pooled connection"
    assert watch.connects <= 1


async def test_nodes_with_one_bad_id_fails_cleanly(api: App, watch: PoolWatch) -> None:
    for _ in range(12):
        body = await api.gql('{ nodes(ids: ["VXNlcjox", "UG9zdDox", "!!"]) { id } }')
        [error] = body["errors"]
        assert "not a valid global ID" in error["message"]
    data = await api.data('{ user(id: "1") { name } }')
    assert data["user"]["name"]
    assert watch.invalidated == 0 and watch.connects <= 1


def cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize(
    ("order", "bad"),
    [
        ("", cursor("id", 2**63, 2**63)),
        ("", cursor("id", 0, 0)),
        ("orderBy: {field: TITLE}", cursor("title", "\ud800", 1)),
        ("orderBy: {field: TITLE}", cursor("title", "a\u0000b", 1)),
        ("orderBy: {field: CREATED_AT}", cursor("createdAt", "0001-01-01T00:00:00+14:00", 1)),
        ("orderBy: {field: CREATED_AT}", cursor("createdAt", "9999-12-31T23:59:59-14:00", 1)),
    ],
)
async def test_hostile_cursor_values_are_bad_input(
    api: App, watch: PoolWatch, order: str, bad: str
) -> None:
    for query in (
        f'{{ posts(first: 2, after: "{bad}", {order}) {{ nodes {{ id }} }} }}',
        f'{{ users(first: 2) {{ nodes {{ posts(first: 2, after: "{bad}", {order}) '
        f"{{ nodes {{ id }} }} }} }} }}",
    ):
        body = await api.gql(query)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert "not a valid cursor" in error["message"]


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (
            "query($s: String) { users(filter: {search: $s}) { totalCount } }",
            {"s": "a\u0000b"},
            "cannot be stored",
        ),
        (
            "query($s: String) { posts(filter: {search: $s}) { totalCount } }",
            {"s": "x" * 201},
            "the limit is 200",
        ),
        (
            "query($s: String) { posts(filter: {tag: $s}) { totalCount } }",
            {"s": "\u0000"},
            "cannot be stored",
        ),
        ("query($s: String!) { tag(name: $s) { name } }", {"s": "t" * 51}, "the limit is 50"),
        (
            "query($s: String!) { userByEmail(email: $s) { name } }",
            {"s": "a\u0000@example.com"},
            "cannot be stored",
        ),
        (
            "query($d: DateTime) { posts(filter: {publishedAfter: $d}) { totalCount } }",
            {"d": "0001-01-01T00:00:00+14:00"},
            "out of range",
        ),
    ],
)
async def test_unstorable_text_is_bad_input(
    api: App, query: str, variables: dict[str, Any], message: str
) -> None:
    body = await api.gql(query, variables)
    [error] = body["errors"]
    assert message in error["message"], error
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_long_inputs_are_not_echoed_back(api: App) -> None:
    body = await api.gql("query($id: ID!) { user(id: $id) { name } }", {"id": "!" * 5000})
    assert len(body["errors"][0]["message"]) < 200


async def test_client_errors_are_not_logged_as_server_errors(
    api: App, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await api.gql('{ posts(first: 101) { totalCount } node(id: "x") { id } }')
        await api.gql("{ posts(first: 1) { nope } }")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_cancelled_statement_finishes_and_keeps_its_connection(
    api: App, watch: PoolWatch
) -> None:
    from sqlalchemy import select, text

    from schema.context import Context
    from schema.reads import fetch
    from settings import Settings

    ctx = Context(
        settings=Settings(database_url=str(api.engine.url)),
        sessionmaker=api.app.state.sessionmaker,
    )
    slow = (
        select(text("pg_sleep(0.3)"))
        if api.engine.dialect.name == "postgresql"
        else select(
            text(
                "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                "WHERE x < 2000000) SELECT count(*) FROM c)"
            )
        )
    )
    task = asyncio.ensure_future(fetch.rows(ctx, slow))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ctx.has_session  # the statement ran to its end on the session...
    await ctx.close()
    assert watch.invalidated == 0  # ...so the connection went back to the pool whole
