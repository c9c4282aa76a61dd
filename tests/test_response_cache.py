"""The response cache of anonymous queries (``RESPONSE_CACHE``), in one process: a hit runs
no SQL statement and answers exactly as the miss did; only anonymous, error-free queries are
kept; a commit makes what it changed stale before its response is sent, and nothing else
(``schema.engine.response_cache``). Across processes: ``tests/test_response_cache_live.py``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any

import pytest
import redis
from graphql import parse

from db.models import Base
from schema import build_schema
from schema.engine import redis_link
from schema.engine.extensions.persisted_queries import sha256
from schema.engine.response_cache import ResponseCache
from schema.engine.selected_types import selected_types
from schema.live.broker import InProcessBroker
from schema.live.events import TABLE_BITS, changed_tables, rows_changed
from schema.reads.tables_read import tables_of
from settings import Settings
from tests.conftest import OWNER, App, app_settings, bearer, running_app
from tests.live import free_port
from tests.redis_server import REDIS, the_outage_line

USER = 'query User { user(id: "2") { name } }'
POSTS = "query Posts($n: Int) { posts(first: $n) { totalCount nodes { title } } }"
TAGS = "{ tags(first: 3) { nodes { name } } }"
RENAME = """mutation($name: String!, $v: Int!) {
  updateUser(input: {id: "2", expectedVersion: $v, name: $name}) { __typename } }"""
GRAPHQL_RESPONSE = "application/graphql-response+json"


def cache_settings(url: str, **overrides: Any) -> Any:
    return app_settings(url, response_cache=True, sql_stats=False, **overrides)


async def post(app: App, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await app.client.post("/graphql", json=body, **kw)


async def counted(app: App, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The response to ``query`` and how many SQL statements it ran."""
    app.statements.clear()
    response = await post(app, query, variables, **kw)
    assert response.status_code == 200, response.text
    return response, app.count()


async def rename(app: App, name: str, version: int) -> None:
    body = await app.gql(RENAME, {"name": name, "v": version}, as_user=OWNER)
    assert body["data"]["updateUser"]["__typename"] == "UserPayload", body


@pytest.fixture
def redis_prefix() -> Any:
    """A key prefix of this test's own in the shared Redis; fails (never skips) without it."""
    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need Redis at {REDIS}: {exc}")
    prefix = f"inkwell-test:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.mark.parametrize("shared", [False, True], ids=["process", "redis"])
async def test_a_hit_runs_no_statement_and_answers_as_the_miss_did(
    write_db_url: str, shared: bool, redis_prefix: str
) -> None:
    extra = {"redis_url": REDIS, "response_cache_redis_prefix": redis_prefix} if shared else {}
    async with running_app(cache_settings(write_db_url, **extra)) as app:
        for n, accept in ((1, None), (2, GRAPHQL_RESPONSE)):
            headers = {"accept": accept} if accept else {}
            miss, statements = await counted(app, POSTS, {"n": n}, headers=headers)
            assert miss.headers["x-cache"] == "MISS"
            assert statements > 0
            hit, statements = await counted(app, POSTS, {"n": n}, headers=headers)
            assert hit.headers["x-cache"] == "HIT"
            assert statements == 0
            assert hit.content == miss.content
            for name in ("content-type", "cache-control", "vary"):
                assert hit.headers.get(name) == miss.headers.get(name), name
        # The same entry, read by a client asking for the other media type.
        other = await post(app, POSTS, {"n": 1}, headers={"accept": GRAPHQL_RESPONSE})
        assert other.headers["x-cache"] == "HIT"
        assert other.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
        # Over GET: public for CDNs, on the hit as on the miss.
        params = {"query": USER}
        missed = await app.client.get("/graphql", params=params)
        app.statements.clear()
        got = await app.client.get("/graphql", params=params)
        assert (missed.headers["x-cache"], got.headers["x-cache"]) == ("MISS", "HIT")
        assert app.count() == 0
        assert got.content == missed.content
        assert got.headers["cache-control"] == missed.headers["cache-control"]
        assert got.headers["cache-control"] == "public, max-age=60"


async def test_variables_and_operation_names_have_entries_of_their_own(write_db_url: str) -> None:
    async with running_app(cache_settings(write_db_url)) as app:
        two, _ = await counted(app, POSTS, {"n": 2})
        three, statements = await counted(app, POSTS, {"n": 3})
        assert three.headers["x-cache"] == "MISS" and statements > 0
        assert len(three.json()["data"]["posts"]["nodes"]) == 3
        # Variables compare as JSON: key order does not matter.
        again, statements = await counted(app, POSTS, {"n": 2})
        assert again.headers["x-cache"] == "HIT" and again.content == two.content
        both = f"{USER} query Other {{ __typename }}"
        for name in ("User", "Other"):
            body = {"query": both, "operationName": name}
            first = await app.client.post("/graphql", json=body)
            assert first.headers["x-cache"] == "MISS"
        second = await app.client.post("/graphql", json={"query": both, "operationName": "Other"})
        assert second.headers["x-cache"] == "HIT"
        assert second.json() == {"data": {"__typename": "Query"}}


async def test_a_request_with_undeclared_variables_is_never_cached(write_db_url: str) -> None:
    # graphql-core ignores them: each new value would be an entry of its own, the same answer.
    async with running_app(cache_settings(write_db_url)) as app:
        for _ in range(2):
            response, statements = await counted(app, POSTS, {"n": 2, "junk": "x"})
            assert response.headers["x-cache"] == "MISS" and statements > 0
            response, statements = await counted(app, USER, {"junk": 1})
            assert response.headers["x-cache"] == "MISS" and statements > 0
        declared, _ = await counted(app, POSTS, {"n": 2})
        again, statements = await counted(app, POSTS, {"n": 2})
        assert (declared.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")


async def test_a_hit_skips_nothing_a_miss_would_have_done(write_db_url: str) -> None:
    digest = sha256(USER)

    def persisted(version: int) -> dict[str, Any]:
        return {"persistedQuery": {"version": version, "sha256Hash": digest}}

    async with running_app(cache_settings(write_db_url)) as app:
        await counted(app, USER)
        hit, _ = await counted(app, USER)
        assert hit.headers["x-cache"] == "HIT"
        # The text with its hash registers the hash: never answered from the cache.
        for _ in range(2):
            sent = {"query": USER, "extensions": persisted(1)}
            both = await app.client.post("/graphql", json=sent)
            assert both.json()["data"]["user"] is not None and "x-cache" not in both.headers
        for _ in range(2):
            alone = await app.client.post("/graphql", json={"extensions": persisted(1)})
            assert alone.json()["data"]["user"] is not None, alone.text
        assert alone.headers["x-cache"] == "HIT"
        # The hash alone in another version is refused, as a miss would be.
        other = await app.client.post("/graphql", json={"extensions": persisted(2)})
        assert other.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", other.text
        assert "x-cache" not in other.headers
        # A read at a WAL position (read replicas: a malformed one is a 400) is never
        # looked up.
        for position in ("0/16B3748", "nonsense"):
            asked, statements = await counted(app, USER, headers={"inkwell-read-after": position})
            assert "x-cache" not in asked.headers and statements > 0


async def test_signed_in_and_failed_responses_are_never_cached(write_db_url: str) -> None:
    async with running_app(cache_settings(write_db_url)) as app:
        signed_in = bearer(app.settings, OWNER)
        for _ in range(2):
            response, statements = await counted(app, USER, headers=signed_in)
            assert "x-cache" not in response.headers and statements > 0
            assert response.headers.get("cache-control") is None
        # Bad credentials are checked, never answered from the cache.
        await post(app, USER)
        refused = await post(app, USER, headers={"authorization": "Bearer nonsense"})
        assert refused.status_code == 401
        assert "x-cache" not in refused.headers
        # A response with errors is not kept (a bad ID: a field error).
        failing = 'query Bad { user(id: "not an id") { name } }'
        for _ in range(2):
            response, _ = await counted(app, failing)
            assert response.json()["errors"]
            assert response.headers["x-cache"] == "MISS"
        # Nor is a mutation's, anonymous or not.
        register = """mutation($e: String!) {
          register(input: {email: $e, name: "N", password: "long enough"}) { __typename } }"""
        for email in ("a@example.com", "b@example.com"):
            body = (await post(app, register, {"e": email})).json()
            assert body["data"]["register"]["__typename"] == "AuthPayload", body


async def test_a_commit_makes_stale_what_it_changed_and_nothing_else(write_db_url: str) -> None:
    async with running_app(cache_settings(write_db_url)) as app:
        before, _ = await counted(app, USER)
        await counted(app, POSTS, {"n": 2})
        await counted(app, TAGS)
        # A profile update (it announces no subscription event) changes users only.
        await rename(app, "Renamed", 1)
        after, statements = await counted(app, USER)
        assert after.headers["x-cache"] == "MISS" and statements > 0
        assert after.json()["data"]["user"]["name"] == "Renamed" != before.json()["data"]["user"]
        for query, variables in ((POSTS, {"n": 2}), (TAGS, None)):
            kept, statements = await counted(app, query, variables)
            assert kept.headers["x-cache"] == "HIT" and statements == 0
        # Registering an account (anonymous) adds a user: `users` is stale again.
        users = "{ users(first: 100) { totalCount } }"
        first, _ = await counted(app, users)
        register = """mutation { register(input: {email: "new@example.com", name: "New",
          password: "long enough"}) { __typename } }"""
        await post(app, register)
        fresh, statements = await counted(app, users)
        assert statements > 0
        count = fresh.json()["data"]["users"]["totalCount"]
        assert count == first.json()["data"]["users"]["totalCount"] + 1
        # A comment reaches posts' comment lists, not the tags' entry.
        comments = '{ post(id: "1") { comments(first: 100) { totalCount } } }'
        listed, _ = await counted(app, comments)
        add = 'mutation { addComment(input: {postId: "1", body: "Hi"}) { __typename } }'
        added = await app.gql(add, as_user=OWNER)
        assert added["data"]["addComment"]["__typename"] == "CommentPayload", added
        again, statements = await counted(app, comments)
        assert statements > 0
        total = again.json()["data"]["post"]["comments"]["totalCount"]
        assert total == listed.json()["data"]["post"]["comments"]["totalCount"] + 1
        kept, statements = await counted(app, TAGS)
        assert kept.headers["x-cache"] == "HIT" and statements == 0


async def test_a_commit_the_cache_failed_to_hear_of_is_still_reported_committed(
    write_db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("the cache broke")

    monkeypatch.setattr(ResponseCache, "committed", broken)
    caplog.set_level(logging.WARNING, logger="inkwell.transaction")
    async with running_app(cache_settings(write_db_url)) as app:
        body = await app.gql(RENAME, {"name": "Kept", "v": 1}, as_user=OWNER)
        assert body["data"]["updateUser"]["__typename"] == "UserPayload", body
        assert body["extensions"]["transaction"] == "committed"
        kept = await app.gql(USER, as_user=OWNER)
        assert kept["data"]["user"]["name"] == "Kept"
    [warning] = [r.getMessage() for r in caplog.records if r.name == "inkwell.transaction"]
    assert warning.startswith("the response cache was not told of a commit")


async def test_a_hit_reports_no_statements_in_sql_stats(write_db_url: str) -> None:
    settings = app_settings(write_db_url, response_cache=True, sql_stats=True)
    async with running_app(settings) as app:
        miss = (await post(app, USER)).json()
        assert miss["extensions"]["sql"]["statements"] > 0
        hit = await post(app, USER)
        assert hit.headers["x-cache"] == "HIT"
        assert hit.json() == {**miss, "extensions": {"sql": {"statements": 0, "durationMs": 0.0}}}


async def test_redis_unreachable_caches_per_process_with_one_warning(
    write_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = cache_settings(write_db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.WARNING, logger="inkwell.redis")
    async with running_app(settings) as app:
        miss, _ = await counted(app, USER)
        hit, statements = await counted(app, USER)
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
        assert statements == 0 and hit.content == miss.content
        await rename(app, "Offline", 1)
        fresh, statements = await counted(app, USER)
        assert statements > 0
        assert fresh.json()["data"]["user"]["name"] == "Offline"
    assert the_outage_line(caplog).startswith("Redis unavailable")


async def test_a_silent_redis_costs_one_timeout_not_one_per_request(
    write_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Redis that accepts connections and never answers: each command would wait out the
    # client's timeout. After the first one, every user of Redis (rate limits, cache
    # look-ups and fills, commit positions, persisted queries) answers from the process.
    monkeypatch.setattr(redis_link, "RETRY_SECONDS", 3600.0)  # one outage, the whole test
    connections = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = cache_settings(
        write_db_url, redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_points=10**6
    )
    async with server, running_app(settings) as app:
        await counted(app, POSTS, {"n": 1})
        first = connections
        assert first >= 1  # the first request did ask Redis
        for n in range(2, 6):
            miss, _ = await counted(app, POSTS, {"n": n})
            assert miss.headers["x-cache"] == "MISS"
        hit, statements = await counted(app, POSTS, {"n": 2})
        assert hit.headers["x-cache"] == "HIT" and statements == 0
        await rename(app, "Quiet", 1)
        document = "query Quiet { __typename }"
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}
        for sent in ({"query": document}, {}):  # registered, then recalled
            answer = await app.client.post("/graphql", json={**sent, "extensions": extensions})
            assert answer.json()["data"] == {"__typename": "Query"}, answer.text
        assert connections == first
    assert connections == first


async def test_off_by_default(write_db_url: str) -> None:
    async with running_app(app_settings(write_db_url)) as app:
        for _ in range(2):
            response, statements = await counted(app, USER)
            assert "x-cache" not in response.headers and statements > 0


def test_every_table_has_a_bit_of_its_own_in_rows_changed_events() -> None:
    tables = set(map(str, Base.metadata.tables))
    assert tables <= set(TABLE_BITS), "give the new table the next bit in TABLE_BITS"
    assert len(set(TABLE_BITS.values())) == len(TABLE_BITS)
    for table in tables:
        assert changed_tables(rows_changed([table]), tables) == {table}
    # A table this version does not know (a newer one's) stands for every table.
    assert changed_tables(rows_changed(["unknown"]), tables) == tables


def test_a_document_reads_the_tables_of_every_type_it_may_answer_with() -> None:
    graphql_schema = build_schema(Settings())._schema

    def tables(document: str) -> frozenset[str]:
        return tables_of(selected_types(graphql_schema, parse(document)))

    assert tables(USER) == {"users"}
    assert tables("{ __typename }") == frozenset()
    # A connection's count alone counts its nodes' rows; visibility reads more tables.
    assert tables("{ posts { totalCount } }") == {"posts"}
    assert tables("{ tags { totalCount } }") == {"tags", "post_tags", "posts"}
    assert tables('{ post(id: "1") { comments { totalCount } } }') == {"posts", "comments"}
    # Through fragments, and an interface stands for each of its types.
    assert tables('{ ...F } fragment F on Query { user(id: "1") { name } }') == {"users"}
    everything = {"users", "posts", "comments", "tags", "post_tags"}
    assert tables('{ node(id: "x") { id } }') == everything


async def test_a_fill_that_raced_a_commit_is_never_served() -> None:
    cache = ResponseCache(Settings(response_cache=True), "fingerprint", None)
    cache.attach(InProcessBroker())
    key = cache.key("text", "d" * 64, None, {})
    body, lookup = await cache.lookup(key, "d" * 64)
    assert body is None and lookup is not None
    lookup.tables = frozenset({"users"})
    # The execution began, a commit changed users, then the fill came (with what it read
    # before the commit, maybe).
    await cache.committed(frozenset({"users"}), 7)
    await cache.fill(lookup, b'{"data":{}}')
    assert (await cache.lookup(key, "d" * 64))[0] is None
    # Filled after that commit, it is served until the next commit writing users.
    _, lookup = await cache.lookup(key, "d" * 64)
    assert lookup is not None
    lookup.tables = frozenset({"users"})
    await cache.fill(lookup, b'{"data":{}}')
    assert (await cache.lookup(key, "d" * 64))[0] == b'{"data":{}}'
    await cache.committed(frozenset({"posts"}), 8)
    assert (await cache.lookup(key, "d" * 64))[0] == b'{"data":{}}'
    # Another process's commit, delivered by the broker.
    cache.observed(replace(rows_changed(["users"]), event_id=9))
    assert (await cache.lookup(key, "d" * 64))[0] is None
