"""OpenTelemetry tracing (``TRACING``), through the real app, with the SDK's in-memory exporter.

Each test gives the app a ``TracerProvider`` of its own (``create_app(tracer_provider=...)``),
so no global provider is set and no test sees another's spans. The spans checked: the
operation's (GraphQL semantic conventions, the viewer, error codes), the executor's (each
level, each batch resolver) and the SQL statements' (database client conventions, no
parameter values, a failure's SQLSTATE), their parents, and a client's ``traceparent``
continued over HTTP and over a WebSocket. With tracing off there are no spans and no
listener of tracing's on the engine.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import event, literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db import reader
from db.stats import SqlStats
from schema.telemetry.tracing_sql import SqlSpans
from server import create_app
from settings import Settings
from tests.conftest import ADMIN_ID, OWNER, app_settings, bearer

#: A client's trace: W3C ``traceparent`` version 00, sampled.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
#: A filter value that must appear in no span (statements are recorded without parameters).
SECRET = "zq-not-in-any-span"

NESTED = """query Nested($q: String) {
  users(first: 3, filter: {search: $q}) { edges { node { name
    posts(first: 2) { edges { node { title
      comments(first: 2) { edges { node { body author { name } } } } } } } } } }
}"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """The test's own provider: spans exported as they end, to ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@dataclass
class Traced:
    """The app with its lifespan running, an httpx client on it, and the statements it runs
    (counted by a listener of the test's own)."""

    app: Starlette
    client: httpx.AsyncClient
    settings: Settings
    statements: list[str] = field(default_factory=list)

    async def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """POST ``body`` to /graphql; the JSON answer."""
        return (await self.client.post("/graphql", json=body, headers=headers)).json()


@asynccontextmanager
async def traced_app(url: str, provider: TracerProvider, **overrides: Any) -> AsyncIterator[Traced]:
    """The app over ``url`` with spans to ``provider`` (``TRACING`` on unless ``overrides``
    say otherwise)."""
    settings = app_settings(url, **{"tracing": True, "sql_stats": False, **overrides})
    app = create_app(settings, tracer_provider=provider)
    async with app.router.lifespan_context(app):
        engine: AsyncEngine = app.state.engine
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            traced = Traced(app, client, settings)
            event.listen(
                engine.sync_engine,
                "before_cursor_execute",
                lambda *a: traced.statements.append(a[2]),
            )
            yield traced


def engine_listeners(engine: AsyncEngine) -> list[int]:
    """How many listeners the engine's ``before_cursor_execute`` and ``after_cursor_execute``
    have: the test's own statement counter (``traced_app``) is one of the first; tracing
    needs none (``db.stats`` tells it of each statement)."""
    dispatch = engine.sync_engine.dispatch
    return [len(list(dispatch.before_cursor_execute)), len(list(dispatch.after_cursor_execute))]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def statement_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is SpanKind.CLIENT]


async def test_a_nested_query_is_a_tree_of_operation_levels_batches_and_statements(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with traced_app(read_db_url, provider) as traced:
        assert engine_listeners(traced.app.state.engine) == [1, 0]
        await traced.client.get("/readyz")  # a statement outside any operation: no span
        assert exporter.get_finished_spans() == ()
        body = {"query": NESTED, "variables": {"q": SECRET}, "operationName": "Nested"}
        assert (await traced.post(body))["data"]["users"]["edges"] == []
        # Statements are recorded with their placeholders, never their values.
        assert exporter.get_finished_spans()
        assert all(SECRET not in repr(span.attributes) for span in exporter.get_finished_spans())
        exporter.clear()
        traced.statements.clear()
        assert "errors" not in await traced.post({"query": NESTED})
        statements = traced.statements
    spans = exporter.get_finished_spans()
    operation = one(spans, "query Nested")
    assert operation.kind is SpanKind.SERVER and operation.parent is None
    assert operation.status.status_code is StatusCode.UNSET
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "Nested"
    assert "enduser.id" not in operation.attributes  # anonymous
    assert "graphql.document" not in operation.attributes
    trace_id = operation.context.trace_id
    assert {span.context.trace_id for span in spans} == {trace_id}

    levels = sorted(
        (s for s in spans if s.name == "resolve level"),
        key=lambda s: s.attributes["inkwell.graphql.level"],  # type: ignore[index]
    )
    assert [level.attributes["inkwell.graphql.fields"] for level in levels] == [  # type: ignore[index]
        ("User.posts",),
        ("Post.comments",),
        ("Comment.author",),
    ]
    assert all(parent_id(level) == span_id(operation) for level in levels)
    assert levels[0].attributes["inkwell.graphql.objects"] == 3  # type: ignore[index]
    for level, name in zip(levels, ("User.posts", "Post.comments", "Comment.author"), strict=True):
        batch = one(spans, f"resolve {name}")
        assert parent_id(batch) == span_id(level)
        assert batch.attributes["inkwell.graphql.objects"] > 0  # type: ignore[index,operator]

    # One span per statement run, each under the batch that ran it (the root field's under
    # the operation).
    sql = statement_spans(spans)
    assert sorted(s.attributes["db.query.text"] for s in sql) == sorted(statements)  # type: ignore[index]
    batches = {span_id(s) for s in spans if s.name.startswith("resolve ") and s not in levels}
    assert [parent_id(s) for s in sql].count(span_id(operation)) == 1  # users' page
    resolvers = {*batches, span_id(operation)}
    system = "sqlite" if read_db_url.startswith("sqlite") else "postgresql"
    for span in sql:
        assert span.name == "SELECT" and parent_id(span) in resolvers
        assert span.attributes is not None
        assert span.attributes["db.system.name"] == system
        assert span.attributes["db.operation.name"] == "SELECT"
        assert span.status.status_code is StatusCode.UNSET


async def test_a_traceparent_is_continued(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with traced_app(read_db_url, provider) as traced:
        headers = {"traceparent": TRACEPARENT, **bearer(traced.settings, ADMIN_ID)}
        query = "{ users(first: 1) { edges { node { id } } } }"
        assert "errors" not in await traced.post({"query": query}, headers)
    spans = exporter.get_finished_spans()
    operation = one(spans, "query")  # no operation name
    assert operation.parent is not None and operation.parent.is_remote
    assert operation.parent.span_id == int(PARENT_ID, 16)
    assert operation.kind is SpanKind.SERVER
    assert operation.attributes is not None
    assert operation.attributes["enduser.id"] == str(ADMIN_ID)
    assert {span.context.trace_id for span in spans} == {int(TRACE_ID, 16)}
    assert statement_spans(spans)


async def test_errors_are_the_operations_status_and_codes(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with traced_app(read_db_url, provider) as traced:
        await traced.post({"query": "{ users(first: -1) { edges { cursor } } }"})
        await traced.post({"query": "{ users("})
    refused, unparsed = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert refused.name == "query"
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.attributes is not None
    assert refused.attributes["error.type"] == "BAD_USER_INPUT"
    assert refused.attributes["inkwell.graphql.error_codes"] == ("BAD_USER_INPUT",)
    assert unparsed.name == "GraphQL Operation"  # no document, so no type
    assert unparsed.attributes is not None
    assert unparsed.attributes["error.type"] == "GRAPHQL_PARSE_FAILED"
    assert "graphql.operation.type" not in unparsed.attributes


async def test_a_mutations_statements_hang_from_it(
    write_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A mutation runs on graphql-core: its statements are the operation's children."""
    query = """mutation Rename($i: UpdateUserInput!) {
      updateUser(input: $i) { __typename ... on UserPayload { user { name } } } }"""
    rename = {"id": str(OWNER), "expectedVersion": 1, "name": "Renamed"}
    async with traced_app(write_db_url, provider) as traced:
        body = {"query": query, "variables": {"i": rename}}
        answer = await traced.post(body, bearer(traced.settings, OWNER))
        assert answer["data"]["updateUser"]["user"] == {"name": "Renamed"}
        statements = traced.statements
    spans = exporter.get_finished_spans()
    operation = one(spans, "mutation Rename")
    assert operation.status.status_code is StatusCode.UNSET
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["enduser.id"] == str(OWNER)
    sql = statement_spans(spans)
    assert [span.attributes["db.query.text"] for span in sql] == statements  # type: ignore[index]
    assert all(parent_id(span) == span_id(operation) for span in sql)
    assert "UPDATE" in [span.name for span in sql]


async def test_a_failed_statements_span_says_why_and_never_how(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Through SQLAlchemy and, on PostgreSQL, on the driver: the SQLSTATE on PostgreSQL, the
    error's class on SQLite, never the message. The statements run as an operation's do,
    with a ``SqlStats`` bound whose observer is the statement spans."""
    postgres = not read_db_url.startswith("sqlite")
    tracer = provider.get_tracer("test")
    async with traced_app(read_db_url, provider) as traced:
        engine: AsyncEngine = traced.app.state.engine
        stats = SqlStats(observer=SqlSpans(tracer, engine.url).statement)
        token = stats.bind()
        try:
            with tracer.start_as_current_span("outer"):
                async with engine.connect() as conn:
                    with pytest.raises(DBAPIError):
                        await conn.execute(text(f"SELECT '{SECRET}' FROM no_such_table"))
                if postgres:
                    async with engine.connect() as conn:
                        broken = select(literal_column("1 / (random() * 0)::int").label("x"))
                        with pytest.raises(DBAPIError):
                            await reader.fetch(conn.sync_connection, broken)  # type: ignore[arg-type]
        finally:
            SqlStats.unbind(token)
    assert stats.statements == (2 if postgres else 1)
    failed = statement_spans(exporter.get_finished_spans())
    assert [span.status.status_code for span in failed] == [StatusCode.ERROR] * len(failed)
    assert len(failed) == (2 if postgres else 1)
    assert all(SECRET not in (span.status.description or "") for span in failed)
    assert failed[0].attributes is not None
    if postgres:
        assert failed[0].attributes["db.response.status_code"] == "42P01"  # undefined_table
        assert failed[0].attributes["error.type"] == "42P01"
        assert failed[1].attributes is not None
        assert failed[1].attributes["error.type"] == "22012"  # division_by_zero
    else:
        assert str(failed[0].attributes["error.type"]).endswith("OperationalError")


def test_an_operation_over_a_websocket_continues_the_connections_traceparent(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    settings = app_settings(read_db_url, tracing=True)
    with (
        TestClient(create_app(settings, tracer_provider=provider)) as http,
        http.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"traceparent": TRACEPARENT}
        ) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        query = "query OverSocket { users(first: 2) { edges { node { name } } } }"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        assert ws.receive_json()["type"] == "next"
        assert ws.receive_json()["type"] == "complete"
    spans = exporter.get_finished_spans()
    operation = one(spans, "query OverSocket")
    assert operation.parent is not None and operation.parent.span_id == int(PARENT_ID, 16)
    assert {span.context.trace_id for span in spans} == {int(TRACE_ID, 16)}
    assert statement_spans(spans)


def test_a_subscriptions_span_lasts_as_long_as_it_and_holds_its_events_statements(
    write_db_url: str,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A subscription's span is current while it follows its events (their statements are
    its children) and ends when the client completes it, with nothing logged: its end may
    run in another context than its start (OpenTelemetry logs a failed ``detach``)."""
    settings = app_settings(write_db_url, tracing=True)
    owner = bearer(settings, OWNER)
    with TestClient(create_app(settings, tracer_provider=provider)) as http:
        created = http.post(
            "/graphql",
            json={"query": 'mutation { createPost(input: {title: "Traced", publish: true}) '
                  "{ ... on PostPayload { post { id } } } }"},
            headers=owner,
        ).json()  # fmt: skip
        post = created["data"]["createPost"]["post"]["id"]
        with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init", "payload": {}})
            assert ws.receive_json()["type"] == "connection_ack"
            query = "subscription Follow($p: ID!) { commentAdded(postId: $p) { body } }"
            payload = {"query": query, "variables": {"p": post}}
            ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
            while http.app.state.broker.subscription_count < 1:  # type: ignore[attr-defined]
                time.sleep(0.01)
            comment = 'mutation { addComment(input: {postId: "%s", body: "Hi"}) { __typename } }'
            http.post("/graphql", json={"query": comment % post}, headers=owner)
            assert ws.receive_json()["payload"]["data"]["commentAdded"] == {"body": "Hi"}
            ws.send_json({"id": "1", "type": "complete"})
            while http.app.state.broker.subscription_count:  # type: ignore[attr-defined]
                time.sleep(0.01)
    spans = exporter.get_finished_spans()
    follow = one(spans, "subscription Follow")
    assert follow.attributes is not None
    assert follow.attributes["graphql.operation.type"] == "subscription"
    assert follow.status.status_code is StatusCode.UNSET, follow.attributes
    children = [span for span in statement_spans(spans) if parent_id(span) == span_id(follow)]
    assert children  # the event's reads
    assert follow.attributes["inkwell.graphql.cancelled"] is True  # completed by the client
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")], caplog.text


async def test_tracing_off_makes_no_span_and_installs_no_listener(
    read_db_url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with traced_app(read_db_url, provider, tracing=False) as traced:
        assert engine_listeners(traced.app.state.engine) == [1, 0]
        assert "errors" not in await traced.post({"query": NESTED}, {"traceparent": TRACEPARENT})
        assert traced.statements
    assert exporter.get_finished_spans() == ()
