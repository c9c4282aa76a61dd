"""Column pruning: a planned query's statements read only the costly columns it selects.

The differential test (``test_executor``) checks that pruned reads answer as graphql-core's
unpruned ones; these check that the columns really are left out, and kept when needed.
"""

from __future__ import annotations

import re

import pytest

from schema.reads.pruning import SELECTED
from tests.conftest import App

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def postgres_only(api: App) -> None:
    if api.settings.is_sqlite:
        pytest.skip("only reads on the driver (PostgreSQL's) prune columns")


def selected(statement: str) -> str:
    """The outermost select list of ``statement``."""
    match = re.match(r"\s*SELECT (.*?) \s*FROM ", statement, re.S)
    assert match, statement
    return match.group(1)


def root_page_on(api: App, table: str) -> str:
    """The one root-page statement on ``table`` (not the viewer's primary-key read)."""
    found = [s for s in api.statements if re.search(rf"FROM {table}\b", s) and "LIMIT" in s]
    assert len(found) == 1, api.statements
    return found[0]


async def test_a_root_page_reads_only_the_selected_costly_columns(api: App) -> None:
    api.statements.clear()
    await api.data("{ users(first: 2) { nodes { name } } }")
    columns = selected(root_page_on(api, "users"))
    assert "users.name" in columns and "users.id" in columns
    for left_out in ("bio", "role", "is_active", "created_at", "updated_at", "version"):
        assert left_out not in columns

    api.statements.clear()
    data = await api.data("{ users(first: 2) { nodes { role version } } }")
    columns = selected(root_page_on(api, "users"))
    assert "users.role" in columns and "users.version" in columns and "is_active" not in columns
    assert all(
        user["role"] in ("ADMIN", "MEMBER") and user["version"] > 0
        for user in data["users"]["nodes"]
    )

    api.statements.clear()
    data = await api.data("{ users(first: 2) { nodes { name createdAt } } }")
    columns = selected(root_page_on(api, "users"))
    assert "users.created_at" in columns and "bio" not in columns
    assert all(user["createdAt"] for user in data["users"]["nodes"])


async def test_nested_pages_and_to_one_reads_prune_by_their_own_selection(api: App) -> None:
    api.statements.clear()
    data = await api.data(
        "{ users(first: 3) { nodes { posts(first: 2) { nodes { title author { bio } } } } } }"
    )
    posts = selected(next(s for s in api.statements if "inkwell_parent" in s))
    assert "title" in posts and "content" not in posts and "created_at" not in posts
    # The authors' read (the viewer's own is whole, and served them when it could).
    authors = [s for s in api.statements if "FROM users" in s and "ANY" in s]
    assert any("bio" in selected(s) and "created_at" not in selected(s) for s in authors)
    assert any(p["nodes"] for u in data["users"]["nodes"] for p in [u["posts"]])


async def test_the_ordering_column_is_read_for_cursors(api: App) -> None:
    query = """query($after: String) { posts(first: 2, after: $after,
        orderBy: {field: CREATED_AT, direction: DESC}) { edges { cursor node { title } } } }"""
    api.statements.clear()
    first = await api.data(query, {"after": None})
    assert "created_at" in selected(root_page_on(api, "posts"))
    edges = first["posts"]["edges"]
    second = await api.data(query, {"after": edges[-1]["cursor"]})
    both = await api.data(query.replace("first: 2", "first: 4"), {"after": None})
    titles = [e["node"]["title"] for e in both["posts"]["edges"]]
    assert titles == [e["node"]["title"] for e in edges + second["posts"]["edges"]]


async def test_what_a_field_reads_does_not_outlive_its_resolution(api: App) -> None:
    await api.data("{ users(first: 2) { nodes { name posts(first: 1) { nodes { title } } } } }")
    assert SELECTED.get() is None


async def test_a_query_selecting_every_column_reads_whole_rows(api: App) -> None:
    api.statements.clear()
    await api.data("{ posts(first: 1) { nodes { content publishedAt createdAt updatedAt } } }")
    columns = selected(root_page_on(api, "posts"))
    for column in ("content", "published_at", "created_at", "updated_at"):
        assert f"posts.{column}" in columns
