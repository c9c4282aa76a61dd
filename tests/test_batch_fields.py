"""One definition per field: graphql-core's per-object resolvers are derived from batch ones.

The differential test (``test_executor``) checks that both executors answer alike; these check
the structure that makes them: every field with a resolver below the root types is declared by
its batch resolver (``schema.reads.batch_fields.batch_field``), its arguments and type
those of the batch resolver, and graphql-core's path reaches that batch resolver through one
DataLoader call for all the siblings asking the field with the same arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

from schema import build_schema
from schema.context import Context
from schema.domains.posts.types import Post, PostFilter, PostStatus
from schema.domains.tags.types import Tag
from schema.domains.users.types import User
from schema.reads import batch_fields
from schema.reads.batch_fields import batch_field, batch_resolver_of, field_loader
from tests.conftest import App, app_settings, running_app

ROOTS = {"Query", "Mutation", "Subscription"}
SETTINGS = app_settings("sqlite+aiosqlite://")


def resolver_fields() -> list[tuple[str, Any]]:
    """``("Type.field", Strawberry field)`` for every field with a resolver on the schema's
    object and interface types, but the root types'."""
    graphql = build_schema(SETTINGS)._schema
    found = []
    for type_name, graphql_type in graphql.type_map.items():
        if type_name in ROOTS or type_name.startswith("__"):
            continue
        for name, field in getattr(graphql_type, "fields", {}).items():
            strawberry_field = field.extensions.get("strawberry-definition")
            if strawberry_field is not None and strawberry_field.base_resolver is not None:
                found.append((f"{type_name}.{name}", strawberry_field))
    return found


def test_every_resolver_below_the_roots_is_derived_from_its_batch_resolver() -> None:
    found = resolver_fields()
    assert {"User.posts", "Post.author", "Comment.post", "Tag.posts", "User.email"} <= {
        name for name, _ in found
    }
    for name, field in found:
        resolver = field.base_resolver.wrapped_func
        batch = batch_resolver_of(resolver)
        # A resolver of its own would be a second implementation, free to drift.
        assert batch is not None, f"{name} has a per-object resolver of its own"
        signature = inspect.signature(batch)
        arguments = list(signature.parameters.values())[2:]
        assert [(a.python_name, a.default) for a in field.arguments] == [
            (p.name, p.default) for p in arguments
        ], name
        returned = inspect.signature(resolver).return_annotation
        assert str(signature.return_annotation).replace(" ", "") == f"list[{returned}]".replace(
            " ", ""
        ), name
        assert inspect.iscoroutinefunction(resolver) == inspect.iscoroutinefunction(batch), name
    # Every batch field is in the schema: none is registered for a resolver no field uses.
    assert set(batch_fields._BATCHED) <= {field.base_resolver.wrapped_func for _, field in found}


def test_a_batch_field_has_the_shape_of_a_batch_resolver() -> None:
    def no_parents(ctx: Any) -> list[int]:
        return []

    def not_a_list(ctx: Any, parents: list[Any]) -> int:
        return 0

    def star(ctx: Any, parents: list[Any], *rest: Any) -> list[int]:
        return []

    for function in (no_parents, not_a_list, star):
        with pytest.raises(TypeError):
            batch_field()(function)
        assert function not in batch_fields._BATCHED.values()


def test_equal_arguments_share_a_field_loader() -> None:
    ctx = Context(settings=SETTINGS, sessionmaker=None)  # type: ignore[arg-type]

    def loader(resolver: Any, status: PostStatus, first: int = 2) -> Any:
        arguments = {"first": first, "filter": PostFilter(status=status), "order_by": None}
        return field_loader(ctx, resolver, arguments)

    drafts = loader(User.posts, PostStatus.DRAFT)
    assert loader(User.posts, PostStatus.DRAFT) is drafts  # equal input objects, not the same
    assert loader(User.posts, PostStatus.PUBLISHED) is not drafts
    assert loader(User.posts, PostStatus.DRAFT, first=3) is not drafts
    assert loader(Tag.posts, PostStatus.DRAFT) is not drafts
    with pytest.raises(KeyError):
        field_loader(ctx, resolver_fields, {})  # not a derived resolver


@pytest.fixture(scope="module")
async def executors(read_db_url: str) -> AsyncIterator[dict[str, App]]:
    """Anonymous apps over the read database, one per executor."""
    async with (
        running_app(app_settings(read_db_url)) as planned,
        running_app(app_settings(read_db_url, query_executor="graphql-core")) as standard,
    ):
        yield {"breadth-first": planned, "graphql-core": standard}


def spy_on(monkeypatch: pytest.MonkeyPatch, resolver: Any) -> list[int]:
    """Record the number of parents of each call of ``resolver``'s batch resolver, on
    either path (both reach it through its registration)."""
    batch = batch_fields._BATCHED[resolver]
    calls: list[int] = []

    async def spy(ctx: Context, parents: list[Any], **arguments: Any) -> Any:
        calls.append(len(parents))
        return await batch(ctx, parents, **arguments)  # type: ignore[misc]

    monkeypatch.setitem(batch_fields._BATCHED, resolver, spy)
    return calls


@pytest.mark.parametrize(("executor", "calls"), [("graphql-core", [7]), ("breadth-first", [7])])
async def test_a_level_is_one_call_of_the_batch_resolver(
    executors: dict[str, App], monkeypatch: pytest.MonkeyPatch, executor: str, calls: list[int]
) -> None:
    seen = spy_on(monkeypatch, Post.author)
    # Named per executor: a new document, planned with the spy in place.
    name = executor.replace("-", "_")
    data = await executors[executor].data(
        f"query {name} {{ posts(first: 7) {{ nodes {{ author {{ name }} }} }} }}"
    )
    assert all(post["author"]["name"] for post in data["posts"]["nodes"])
    assert seen == calls


@pytest.mark.parametrize(
    ("executor", "calls"),
    # graphql-core: one DataLoader per field and argument values, so the two aliases asking
    # with equal arguments (input objects included) share a call; the breadth-first executor
    # calls once per selection.
    [("graphql-core", [3, 6]), ("breadth-first", [3, 3, 3])],
)
async def test_per_object_loads_batch_by_field_and_argument_values(
    executors: dict[str, App], monkeypatch: pytest.MonkeyPatch, executor: str, calls: list[int]
) -> None:
    seen = spy_on(monkeypatch, User.posts)
    published = "filter: {status: PUBLISHED}"
    await executors[executor].data(
        f"""query {executor.replace("-", "_")}_aliases {{ users(first: 3) {{ nodes {{
          a: posts(first: 2, {published}) {{ nodes {{ id }} }}
          b: posts(first: 2, {published}) {{ totalCount }}
          c: posts(first: 1) {{ nodes {{ id }} }} }} }} }}"""
    )
    assert sorted(seen) == calls


async def test_different_fields_on_one_loader_share_its_statement_per_object(
    executors: dict[str, App],
) -> None:
    # Post.author and Comment.author, one level, one users-by-id loader: on graphql-core's path
    # their batch resolvers load through its futures (batch.PER_OBJECT), so one statement.
    app = executors["graphql-core"]
    found = await app.data(
        "{ posts(first: 1, filter: {status: PUBLISHED}) { nodes { id "
        "comments(first: 1) { nodes { id } } } } }"
    )
    post = found["posts"]["nodes"][0]
    ids = [post["id"], post["comments"]["nodes"][0]["id"]]
    app.statements.clear()
    data = await app.data(
        """query($ids: [ID!]!) { nodes(ids: $ids) {
          ... on Post { author { name } } ... on Comment { author { name } } } }""",
        {"ids": ids},
    )
    assert all(node["author"]["name"] for node in data["nodes"])
    assert app.count() == 3, app.statements  # posts, comments, users
