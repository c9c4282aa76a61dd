"""The breadth-first executor answers exactly as graphql-core does.

A differential test: hypothesis generates queries over the whole read schema (aliases,
fragments and inline fragments, interfaces and ``__typename``, ``@skip``/``@include`` with
variables, arguments per field, invalid arguments whose errors propagate through non-null
positions) and each runs on two apps over the same database, one with
``QUERY_EXECUTOR=graphql-core``; data must be identical (key order included) and so must the
errors (message, path, code). A spy checks the plan path really ran.
"""

from __future__ import annotations

import base64
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.context import Context
from schema.engine.executor.run import BreadthFirst
from tests.conftest import ADMIN_ID, OWNER, App, app_settings, running_app

#: Viewers: anonymous, a member (sees their own drafts), an admin (sees everything).
VIEWERS = (None, OWNER, ADMIN_ID)


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


# -- a generator of queries over the read schema ------------------------------------------

SCALARS = {
    "User": [
        "id",
        "databaseId",
        "name",
        "bio",
        "role",
        "isActive",
        "createdAt",
        "updatedAt",
        "email",
        "version",
        "postCount",
    ],
    "Post": [
        "id",
        "databaseId",
        "title",
        "content",
        "status",
        "publishedAt",
        "createdAt",
        "updatedAt",
        "version",
        "commentCount",
    ],
    "Comment": ["id", "databaseId", "body", "createdAt", "updatedAt", "version"],
    "Tag": ["id", "databaseId", "name", "postCount"],
}
#: Relationship fields: name -> (target type, is a connection).
RELATIONS = {
    "User": {"posts": ("Post", True), "comments": ("Comment", True)},
    "Post": {"author": ("User", False), "comments": ("Comment", True), "tags": ("Tag", False)},
    "Comment": {"author": ("User", False), "post": ("Post", False)},
    "Tag": {"posts": ("Post", True)},
}
ORDER_FIELDS = {
    "User": ["ID", "NAME", "CREATED_AT"],
    "Post": ["ID", "TITLE", "PUBLISHED_AT", "CREATED_AT"],
    "Comment": ["ID", "CREATED_AT"],
    "Tag": ["ID", "NAME", "POST_COUNT"],
}
BAD_CURSOR = '"bm90LWEtY3Vyc29y"'
#: Filters of the root connections (a filtered page builds its statement for itself).
FILTERS = {
    "User": ['{search: "a"}', "{isActive: true}", "{role: ADMIN}", '{search: "example"}'],
    "Post": ["{status: DRAFT}", '{search: "e"}', '{tag: "python"}', "{status: PUBLISHED}"],
}


@st.composite
def connection_arguments(draw: st.DrawFn, node_type: str) -> str:
    parts = []
    size = draw(
        st.sampled_from(["first: 2", "first: 3", "first: 0", "last: 2", "", "first: 2", "last: 1"])
    )
    if draw(st.integers(0, 14)) == 0:
        size = "first: -1"  # invalid: an error at every parent
    if size:
        parts.append(size)
    if draw(st.integers(0, 14)) == 0:
        parts.append(f"after: {BAD_CURSOR}")  # an error at every parent
    if draw(st.booleans()):
        field = draw(st.sampled_from(ORDER_FIELDS[node_type]))
        direction = draw(st.sampled_from(["ASC", "DESC"]))
        parts.append(f"orderBy: {{field: {field}, direction: {direction}}}")
    if draw(st.integers(0, 3)) == 0 and node_type in FILTERS:
        parts.append(f"filter: {draw(st.sampled_from(FILTERS[node_type]))}")
    return f"({', '.join(parts)})" if parts else ""


@st.composite
def selection(draw: st.DrawFn, type_name: str, depth: int) -> str:
    """A selection set on ``type_name``: scalars, relations, fragments, directives."""
    items = []
    for name in draw(st.lists(st.sampled_from(SCALARS[type_name]), min_size=1, max_size=3)):
        items.append(draw(decorated(name)))
    if draw(st.integers(0, 3)) == 0:
        items.append("__typename")
    if depth > 0:
        relations = RELATIONS[type_name]
        for name in draw(st.lists(st.sampled_from(sorted(relations)), max_size=2, unique=True)):
            target, is_connection = relations[name]
            inner = draw(selection(target, depth - 1))
            if is_connection:
                arguments = draw(connection_arguments(target))
                body = draw(connection_body(inner))
                items.append(draw(decorated(f"{name}{arguments}", body)))
            else:
                items.append(draw(decorated(name, inner)))
    if draw(st.integers(0, 4)) == 0:  # the same fields again through an inline fragment
        items.append(f"... on {type_name} {{ {items[0]} }}")
    if draw(st.integers(0, 4)) == 0:
        items.append(f"... @include(if: $flag) {{ {items[-1]} }}")
    if draw(st.integers(0, 5)) == 0:
        items.append(f"...{type_name}Bits")
    return " ".join(items)


@st.composite
def decorated(draw: st.DrawFn, field: str, body: str = "") -> str:
    """``field`` (a name with its arguments) maybe aliased and given a directive, then
    ``body`` (its selection set, if any)."""
    name = field.partition("(")[0]
    alias = draw(st.sampled_from(["", "", "", f"{name}_{draw(st.integers(1, 99))}: "]))
    directive = draw(
        st.sampled_from(
            ["", "", "", " @skip(if: $flag)", " @include(if: $flag)", " @skip(if: false)"]
        )
    )
    return f"{alias}{field}{directive}{body and f' {{ {body} }}'}"


@st.composite
def connection_body(draw: st.DrawFn, inner: str) -> str:
    parts = draw(
        st.lists(
            st.sampled_from(
                [
                    f"edges {{ cursor node {{ {inner} }} }}",
                    # Edges read only for their nodes: completed from the connection's nodes.
                    f"edges {{ node {{ {inner} }} }}",
                    f"edges {{ __typename n: node {{ {inner} }} node {{ __typename }} }}",
                    f"nodes {{ {inner} }}",
                    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }",
                    "totalCount",
                    "__typename",
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    return " ".join(parts)


FRAGMENTS = {
    "UserBits": "fragment UserBits on User { name databaseId }",
    "PostBits": "fragment PostBits on Post { title author { name } }",
    "CommentBits": "fragment CommentBits on Comment { body }",
    "TagBits": "fragment TagBits on Tag { name }",
}


@st.composite
def operations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    roots = []
    for _ in range(draw(st.integers(1, 2))):
        root = draw(
            st.sampled_from(
                ["users", "posts", "tags", "post", "user", "node", "nodes", "viewer", "lookup"]
            )
        )
        if root in ("users", "posts", "tags"):
            node_type = {"users": "User", "posts": "Post", "tags": "Tag"}[root]
            inner = draw(selection(node_type, 2))
            arguments = draw(connection_arguments(node_type))
            body = draw(connection_body(inner))
            roots.append(f"{root}{arguments} {{ {body} }}")
        elif root in ("post", "user"):
            node_type = root.capitalize()
            pk = draw(st.sampled_from([1, 2, 5, 17, 99999]))
            roots.append(f'{root}(id: "{pk}") {{ {draw(selection(node_type, 2))} }}')
        elif root == "viewer":
            roots.append(f"viewer {{ {draw(selection('User', 2))} }}")
        elif root == "lookup":  # the root fields that find a row by another key
            head = draw(
                st.sampled_from(
                    [
                        ('userByEmail(email: "admin@example.com")', "User"),
                        ('userByEmail(email: "nobody@example.com")', "User"),
                        ('tag(name: "python")', "Tag"),
                        ('tag(name: "no-such-tag")', "Tag"),
                    ]
                )
            )
            roots.append(f"{head[0]} {{ {draw(selection(head[1], 2))} }}")
        else:
            ids = [
                gid(
                    draw(st.sampled_from(["User", "Post", "Comment", "Tag"])),
                    draw(st.integers(1, 40)),
                )
                for _ in range(2)
            ]
            spreads = " ".join(
                f"... on {t} {{ {draw(selection(t, 1))} }}"
                for t in draw(
                    st.lists(
                        st.sampled_from(["User", "Post", "Comment", "Tag"]),
                        min_size=1,
                        max_size=3,
                        unique=True,
                    )
                )
            )
            head = f'node(id: "{ids[0]}")' if root == "node" else f"nodes(ids: {json.dumps(ids)})"
            roots.append(f"{head} {{ __typename id {spreads} }}")
    body = " ".join(f"r{i}: {r}" for i, r in enumerate(roots))
    # Validation refuses unused fragments and variables: declare only what is used.
    fragments = " ".join(text for name, text in FRAGMENTS.items() if f"...{name}" in body)
    if "$flag" not in body:
        return f"query Q {{ {body} }} {fragments}", {}
    return f"query Q($flag: Boolean!) {{ {body} }} {fragments}", {"flag": draw(st.booleans())}


# -- the test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def pair(read_db_url: str) -> AsyncIterator[tuple[App, App]]:
    """Two apps over the read database: breadth-first and graphql-core."""
    async with (
        running_app(app_settings(read_db_url)) as planned,
        running_app(app_settings(read_db_url, query_executor="graphql-core")) as standard,
    ):
        yield planned, standard


def _errors(body: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (
            json.dumps(e.get("path")),
            e["message"],
            (e.get("extensions") or {}).get("code"),
        )
        for e in body.get("errors", [])
    )


async def _compare(pair: tuple[App, App], query: str, variables: dict[str, Any]) -> None:
    planned, standard = pair
    for viewer in VIEWERS:
        got = (
            await planned.gql(query, variables, as_user=viewer)
            if viewer
            else await planned.gql(query, variables)
        )
        want = (
            await standard.gql(query, variables, as_user=viewer)
            if viewer
            else await standard.gql(query, variables)
        )
        assert json.dumps(got.get("data")) == json.dumps(want.get("data")), (query, viewer)
        assert _errors(got) == _errors(want), (query, viewer)


@given(operation=operations())
@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_breadth_first_matches_graphql_core(
    pair: tuple[App, App], operation: tuple[str, dict[str, Any]]
) -> None:
    await _compare(pair, *operation)


async def test_the_plan_path_runs_for_reads_and_not_for_introspection(
    pair: tuple[App, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    original = BreadthFirst.run

    async def spy(self: BreadthFirst) -> Any:
        runs.append(1)
        return await original(self)

    monkeypatch.setattr(BreadthFirst, "run", spy)
    planned, _ = pair
    await planned.data("{ users(first: 2) { nodes { name posts(first: 1) { nodes { title } } } } }")
    assert runs == [1]
    await planned.data("{ __schema { queryType { name } } }")
    assert runs == [1], "introspection goes through graphql-core"


@pytest.mark.parametrize(
    "query",
    [
        # A bad cursor on a nested non-null connection: an error per parent, null propagating
        # to each nullable ancestor.
        f"{{ users(first: 3) {{ nodes {{ name posts(after: {BAD_CURSOR}) {{ totalCount }} }} }} }}",
        # The same through edges read only for their nodes (paths through each edge).
        f"{{ users(first: 3) {{ edges {{ node {{ name posts(after: {BAD_CURSOR}) "
        "{ totalCount } } } } }",
        f'{{ post(id: "1") {{ title comments(first: 2, after: {BAD_CURSOR}) '
        "{ nodes { body } } } }",
        # Several errors null one ancestor, reached through edges (a cursor: a synchronous
        # batch) and through nodes: graphql-core keeps the first in document order.
        "{ users(first: 2) { edges { cursor node { name comments(first: -1) { totalCount } } } "
        "nodes { name comments(first: -1) { totalCount } } } }",
        "{ a: users(first: 2) { nodes { name } } b: users(first: 2) { nodes { email } } }",
        '{ nodes(ids: ["VXNlcjox", "UG9zdDox", "VGFnOjE=", "Q29tbWVudDox", "VXNlcjo5OTk5"]) '
        "{ __typename ... on User { name } ... on Post { title } ... on Tag { name } } }",
        "{ users(first: -1) { nodes { name } } tags(first: 2) { nodes { name } } }",
    ],
)
async def test_error_paths_and_null_propagation_match(pair: tuple[App, App], query: str) -> None:
    await _compare(pair, query, {})


async def test_a_nested_read_costs_one_statement_per_level(pair: tuple[App, App]) -> None:
    planned, _ = pair
    query = """{ users(first: 50) { edges { node { id posts(first: 10) { edges { node { title
        comments(first: 5) { edges { node { body author { name } } } } } } } } } } }"""
    planned.statements.clear()
    await planned.data(query)
    assert planned.count() == 4, planned.statements


async def test_a_planned_query_leaves_no_cycle_through_its_context(
    pair: tuple[App, App],
) -> None:
    # graphql-core's executor holds helpers bound to itself; unbroken, that cycle kept every
    # operation's context (and its request, loaders and rows) for the cyclic collector.
    planned, _ = pair
    query = "{ users(first: 3) { edges { node { name posts(first: 2) { nodes { title } } } } } }"
    await planned.data(query)
    gc.collect()
    # Contexts of earlier tests that something else still holds (Hypothesis keeps its runs'
    # tracebacks) may become garbage at any time: held here, only this request's can.
    earlier = [o for o in gc.get_objects() if isinstance(o, Context)]
    gc.disable()
    try:
        await planned.data(query)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, Context)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
    del earlier


async def test_a_plan_keeps_literal_arguments_and_reads_variables_each_time(
    pair: tuple[App, App],
) -> None:
    # A plan outlives its operation: literal scalar arguments are kept with it, while an
    # argument holding a variable (even inside a list) is read from each operation's values.
    planned, _ = pair
    literal = "{ users(first: 2) { nodes { name posts(first: 1) { nodes { title } } } } }"
    varying = (
        "query($n: Int, $ids: [ID!]!) { users(first: $n) { nodes { name } } "
        "nodes(ids: $ids) { id } }"
    )
    for _ in range(2):
        data = await planned.data(literal)
        assert len(data["users"]["nodes"]) == 2
        assert all(len(u["posts"]["nodes"]) <= 1 for u in data["users"]["nodes"])
    for n, ids in ((1, ["VXNlcjox"]), (3, ["VXNlcjox", "VXNlcjoy"])):
        data = await planned.data(varying, {"n": n, "ids": ids})
        assert len(data["users"]["nodes"]) == n
        assert [node["id"] for node in data["nodes"]] == ids
    for query, variables in ((literal, {}), (varying, {"n": 2, "ids": ["VXNlcjoz"]})):
        await _compare(pair, query, variables)
