"""Operations too big to serve are refused with a clear error and a code, before any SQL."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse

from schema.engine.limits import measure, sizing_variables
from server import create_app
from settings import Settings
from tests.conftest import App, app_settings, running_app

NESTED = (
    "{ users(first: %d) { nodes { posts(first: %d) { nodes { "
    "comments(first: %d) { nodes { body } } } } } } }"
)


def code_of(body: dict[str, Any]) -> str:
    assert body["data"] is None, body
    [error] = body["errors"]
    return str(error["extensions"]["code"])


def cost_of(query: str, variables: dict[str, Any] | None = None) -> int:
    from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
    from graphql.execution.values import get_variable_values

    schema = create_app(Settings()).routes[0].app.schema._schema  # type: ignore[attr-defined]
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    assert not isinstance(coerced, list), coerced
    found = measure(
        schema, operation, fragments, coerced.coerced, default_page_size=20, max_page_size=100
    )
    return found.cost


def test_the_cost_multiplies_page_sizes_through_the_nesting() -> None:
    assert cost_of(NESTED % (100, 100, 100)) == 100 + 100 * 100 + 100 * 100 * 100
    assert cost_of(NESTED % (50, 10, 5)) == 50 + 500 + 2500
    # Variables count, the default page size applies without first/last, tags are a short
    # list, and fragments are expanded.
    query = """query($n: Int) { users(first: $n) { ...F } posts { nodes { tags { name } } } }
               fragment F on UserConnection { edges { node { posts(last: 3) { totalCount } } } }"""
    assert cost_of(query, {"n": 7}) == 7 + 7 * 3 + 20 + 20 * 10
    assert cost_of('{ nodes(ids: ["1", "2", "3"]) { id } }') == 3


async def test_a_query_asking_for_a_million_rows_is_refused_before_any_sql(api: App) -> None:
    body = await api.gql(NESTED % (100, 100, 100))
    assert code_of(body) == "QUERY_TOO_COSTLY"
    assert body["errors"][0]["extensions"]["actual"] == 1_010_100
    assert api.count() == 0
    # The same shape with small pages runs.
    assert "errors" not in await api.gql(NESTED % (5, 5, 5))


async def test_a_remembered_measure_follows_the_variables_that_size_pages(api: App) -> None:
    """Measures are remembered per document, keyed by the variables inside first/last/ids:
    the same document with a bigger page variable is measured (and refused) anew."""
    query = (
        "query($n: Int, $id: ID!) { users(first: $n) { nodes { posts(first: $n) { nodes { "
        "comments(first: $n) { nodes { body } } } } } } user(id: $id) { name } }"
    )
    for n, refused in ((5, False), (100, True), (5, False), (100, True)):
        for user in ("1", "2"):  # a variable that sizes nothing: the measure is shared
            body = await api.gql(query, {"n": n, "id": user})
            assert ("errors" in body and code_of(body) == "QUERY_TOO_COSTLY") is refused, body
    assert sizing_variables(parse(query).definitions[0], {}) == ("n",)  # type: ignore[arg-type]


async def test_depth_aliases_tokens_and_variables_have_their_own_limits(api: App) -> None:
    deep = "{ users(first: 1) { nodes { " + "posts(first: 1) { nodes { author { " * 6
    deep += "name" + " } } }" * 6 + " } } }"
    assert code_of(await api.gql(deep)) == "QUERY_TOO_DEEP"
    aliases = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(31)) + " }"
    assert code_of(await api.gql(aliases)) == "TOO_MANY_ALIASES"
    tokens = "{ " + "viewer { id } " * 2000 + "}"
    assert code_of(await api.gql(tokens)) == "DOCUMENT_TOO_LARGE"
    huge = {"x": "y" * 600_000}
    assert code_of(await api.gql("query($x: ID!) { post(id: $x) { id } }", huge)) == (
        "VARIABLES_TOO_LARGE"
    )
    assert api.count() == 0


@pytest.mark.parametrize("environment", ["development", "production"])
async def test_introspection_is_off_in_production_unless_turned_on(
    read_db_url: str, environment: str
) -> None:
    query = "{ __schema { queryType { name } } }"
    settings = app_settings(read_db_url, environment=environment)
    async with running_app(settings) as app:
        body = await app.gql(query)
    if environment == "development":
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    else:
        assert body["data"] is None and "introspection" in body["errors"][0]["message"].lower()
    async with running_app(
        app_settings(read_db_url, environment=environment, introspection=True)
    ) as app:
        assert "errors" not in await app.gql(query)


async def test_an_oversized_body_is_refused_with_413_before_it_is_parsed(api: App) -> None:
    big = {"query": "{ viewer { id } }", "variables": {"x": "y" * (1024 * 1024)}}
    response = await api.client.post("/graphql", json=big)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"

    async def chunks() -> Any:  # no Content-Length: the body is counted as it arrives
        yield b'{"query": "{ viewer { id } }", "variables": {"x": "'
        for _ in range(20):
            yield b"z" * 65536
        yield b'"}}'

    response = await api.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    small = await api.client.post("/graphql", json={"query": "{ viewer { id } }"})
    assert small.status_code == 200 and small.json()["data"]["viewer"]["id"]
    assert api.count() == 1  # the small request's viewer: nothing else reached the database


def test_fragments_on_interfaces_unions_and_defaulted_variables_are_measured() -> None:
    nested = "posts(first: 100) { nodes { comments(first: 100) { nodes { body } } } }"
    on_user = '{ nodes(ids: ["VXNlcjox"]) { ... on User { ' + nested + " } } }"
    assert cost_of(on_user) == 1 + 100 + 100 * 100
    payload = (
        'mutation { createPost(input: {title: "x"}) { ... on PostPayload { post { '
        "comments(first: 100) { nodes { body } } } } } }"
    )
    assert cost_of(payload) == 100
    defaulted = (
        "query($n: Int = 100) { users(first: $n) { nodes { posts(first: $n) { totalCount } } } }"
    )
    assert cost_of(defaulted) == 100 + 100 * 100
    assert cost_of(defaulted, {"n": 100.0}) == 100 + 100 * 100  # a whole float is an Int
