"""Relay global object identification and the root lookups."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from sqlalchemy import select

from schema.relay.node import NODE_KINDS
from tests.conftest import App
from tests.truth import table


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def test_node_resolves_every_type(api: App) -> None:
    query = """query($id: ID!) { node(id: $id) { __typename id
        ... on User { name } ... on Post { title }
        ... on Comment { body } ... on Tag { name } } }"""
    for type_name in ("User", "Post", "Comment", "Tag"):
        node = (await api.data(query, {"id": gid(type_name, 2)}))["node"]
        assert node["__typename"] == type_name and node["id"] == gid(type_name, 2)
    assert (await api.data(query, {"id": gid("Post", 999_999)}))["node"] is None


async def test_nodes_keeps_order_and_batches_per_type(api: App) -> None:
    ids = [gid("User", 3), gid("Post", 5), gid("User", 999_999), gid("User", 1), gid("Post", 6)]
    nodes = (await api.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}))[
        "nodes"
    ]
    assert [n and n["id"] for n in nodes] == [ids[0], ids[1], None, ids[3], ids[4]]
    assert api.count() == api.sign_in + 2  # one statement per type


async def test_root_lookups_accept_global_and_numeric_ids(api: App) -> None:
    data = await api.data(
        f"""{{ a: user(id: "{gid("User", 4)}") {{ id email }} b: user(id: "4") {{ id }}
              p: post(id: "{gid("Post", 9)}") {{ id author {{ id }} }} q: post(id: 9) {{ id }} }}"""
    )
    assert data["a"]["id"] == data["b"]["id"] == gid("User", 4)
    assert data["p"]["id"] == data["q"]["id"] == gid("Post", 9)
    [row] = await table(api.engine, "SELECT author_id FROM posts WHERE id = 9")
    assert data["p"]["author"]["id"] == gid("User", row["author_id"])


async def test_user_by_email_is_case_and_space_insensitive(api: App) -> None:
    data = await api.data('{ userByEmail(email: "  LONELY@Example.COM ") { name } }')
    assert data["userByEmail"] == {"name": "Lonely Writer"}
    assert (await api.data('{ userByEmail(email: "nobody@example.com") { name } }'))[
        "userByEmail"
    ] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ node(id: "!!!") { id } }', "not a valid global ID"),
        ('{ node(id: "VXNlcg==") { id } }', "not a valid global ID"),  # "User" without ":pk"
        ('{ node(id: "VXNlcjphYmM=") { id } }', "not a valid global ID"),  # "User:abc"
        ('{ node(id: "Qm9vazox") { id } }', "unknown type 'Book'"),  # "Book:1"
        (f'{{ post(id: "{gid("User", 1)}") {{ id }} }}', "must be a Post ID"),
        ('{ user(id: "99999999999999999999999") { id } }', "out of range"),
        ('{ posts(filter: {authorId: "nope"}) { totalCount } }', "not a valid global ID"),
    ],
)
async def test_malformed_ids_are_clear_errors(api: App, query: str, message: str) -> None:
    body = await api.gql(query)
    [error] = body["errors"]
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_nodes_is_capped(api: App) -> None:
    body = await api.gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [gid("User", 1)] * 101}
    )
    assert "above the limit of 100" in body["errors"][0]["message"]


async def test_fields_match_the_row(api: App) -> None:
    data = await api.data(
        f"""{{ node(id: "{gid("Post", 7)}") {{ ... on Post {{ databaseId title content
              status publishedAt createdAt updatedAt version }} }} }}"""
    )
    post = data["node"]
    [row] = await table(api.engine, "SELECT title, content, status FROM posts WHERE id = 7")
    assert (post["title"], post["content"], post["status"]) == (
        row["title"],
        row["content"],
        row["status"].upper(),
    )
    assert post["version"] == 1
    assert post["databaseId"] == "7"  # 64-bit ids travel as strings
    assert post["createdAt"].endswith("+00:00")  # timezone-aware UTC on both databases


@pytest.mark.parametrize("type_name", ["User", "Post", "Comment", "Tag"])
async def test_from_row_sets_every_field_as_the_constructor_would(api: App, type_name: str) -> None:
    # ``from_row`` assigns fields on a blank instance (``node.new_node``), skipping the
    # dataclass ``__init__``: a field it forgot would only fail when read.
    kind = NODE_KINDS[type_name]
    async with api.engine.connect() as connection:
        row = (await connection.execute(select(kind.model.__table__).limit(1))).one()
    node = kind.from_row(row)
    cls = type(node)
    names = {field.name for field in dataclasses.fields(cls) if field.init}
    assert set(vars(node)) == names
    assert node == cls(**{name: getattr(node, name) for name in names})
