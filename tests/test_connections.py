"""Root connections: keyset walks, filters, ordering, totalCount, and argument errors."""

from __future__ import annotations

from typing import Any

import pytest

from schema.reads import fetch
from tests.conftest import App
from tests.truth import pk, table

POSTS_PAGE = """
query($first: Int, $after: String, $last: Int, $before: String,
      $order: PostOrder, $filter: PostFilter) {
  posts(first: $first, after: $after, last: $last, before: $before,
        orderBy: $order, filter: $filter) {
    totalCount
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

ORDERINGS = [
    (None, "id"),
    ({"field": "ID", "direction": "DESC"}, "id DESC"),
    ({"field": "CREATED_AT", "direction": "ASC"}, "created_at, id"),
    ({"field": "CREATED_AT", "direction": "DESC"}, "created_at DESC, id DESC"),
    ({"field": "PUBLISHED_AT", "direction": "ASC"}, "published_at ASC NULLS LAST, id"),
    ({"field": "PUBLISHED_AT", "direction": "DESC"}, "published_at DESC NULLS LAST, id DESC"),
    ({"field": "TITLE", "direction": "ASC"}, "title, id"),
    ({"field": "TITLE", "direction": "DESC"}, "title DESC, id DESC"),
]


async def walk(api: App, variables: dict[str, Any], forward: bool, size: int) -> list[int]:
    """Every post id, page by page, following cursors in one direction."""
    seen: list[int] = []
    cursor = None
    for _ in range(1000):
        page_vars = {
            **variables,
            ("first" if forward else "last"): size,
            ("after" if forward else "before"): cursor,
        }
        conn = (await api.data(POSTS_PAGE, page_vars))["posts"]
        ids = [pk(edge["node"]["id"]) for edge in conn["edges"]]
        info = conn["pageInfo"]
        assert len(ids) <= size
        if forward:
            seen += ids
            more, cursor = info["hasNextPage"], info["endCursor"]
            assert info["hasPreviousPage"] is (len(seen) > len(ids))
        else:
            seen = ids + seen
            more, cursor = info["hasPreviousPage"], info["startCursor"]
        if ids:
            assert info["startCursor"] == conn["edges"][0]["cursor"]
            assert info["endCursor"] == conn["edges"][-1]["cursor"]
        if not more:
            return seen
    raise AssertionError("walk did not end")


@pytest.mark.parametrize(("order", "sql_order"), ORDERINGS)
async def test_walking_pages_yields_every_row_once_in_order(
    api: App, order: dict[str, str] | None, sql_order: str
) -> None:
    expected = [
        r["id"] for r in await table(api.engine, f"SELECT id FROM posts ORDER BY {sql_order}")
    ]
    variables = {"order": order}
    assert await walk(api, variables, forward=True, size=97) == expected
    assert await walk(api, variables, forward=False, size=89) == expected


async def test_pages_after_cursors_share_one_statement_per_shape(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cursor's values are bound parameters: a walk builds (and so compiles) its page
    # statement once per shape, not once per page (schema.reads.keyset.cursor_params).
    built: list[object] = []
    original = fetch.root_page_statement

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(fetch, "root_page_statement", counting)
    expected = [r["id"] for r in await table(api.engine, "SELECT id FROM posts ORDER BY title, id")]
    variables = {"order": {"field": "TITLE", "direction": "ASC"}}
    assert await walk(api, variables, forward=True, size=53) == expected
    assert len(expected) > 2 * 53
    assert len(built) <= 2  # the first page, and every page after a cursor (or cached)


async def test_walk_with_filter_and_small_pages(api: App) -> None:
    expected = [
        r["id"]
        for r in await table(
            api.engine,
            "SELECT id FROM posts WHERE status = 'published' "
            "ORDER BY published_at DESC NULLS LAST, id DESC",
        )
    ]
    variables = {
        "order": {"field": "PUBLISHED_AT", "direction": "DESC"},
        "filter": {"status": "PUBLISHED"},
    }
    assert await walk(api, variables, forward=True, size=100) == expected
    first = (await api.data(POSTS_PAGE, {**variables, "first": 1}))["posts"]
    assert first["totalCount"] == len(expected)


async def test_after_and_before_together_bound_both_sides(api: App) -> None:
    conn = (await api.data(POSTS_PAGE, {"first": 10}))["posts"]
    cursors = [e["cursor"] for e in conn["edges"]]
    between = await api.data(POSTS_PAGE, {"after": cursors[1], "before": cursors[6], "first": 100})
    got = [e["cursor"] for e in between["posts"]["edges"]]
    assert got == cursors[2:6]


async def test_users_filters(api: App) -> None:
    query = """query($f: UserFilter) { users(first: 100, filter: $f) {
        totalCount nodes { id name email role isActive } } }"""
    admins = (await api.data(query, {"f": {"role": "ADMIN"}}))["users"]
    expected = await table(api.engine, "SELECT id FROM users WHERE role = 'admin' ORDER BY id")
    assert [pk(n["id"]) for n in admins["nodes"]] == [r["id"] for r in expected]
    assert admins["totalCount"] == len(expected) >= 1
    inactive = (await api.data(query, {"f": {"isActive": False}}))["users"]
    assert all(not n["isActive"] for n in inactive["nodes"])
    expected_inactive = await table(api.engine, "SELECT id FROM users WHERE NOT is_active")
    assert inactive["totalCount"] == len(expected_inactive)
    found = (await api.data(query, {"f": {"search": "LONELY"}}))["users"]["nodes"]
    assert [n["name"] for n in found] == ["Lonely Writer"]
    by_email = (await api.data(query, {"f": {"search": "ONELY@EXAMPLE"}}))["users"]["nodes"]
    assert [n["name"] for n in by_email] == ["Lonely Writer"]
    # LIKE wildcards in a search are literal characters.
    assert (await api.data(query, {"f": {"search": "%"}}))["users"]["totalCount"] == 0


async def test_posts_filters(api: App) -> None:
    query = """query($f: PostFilter) { posts(first: 100, filter: $f) {
        totalCount nodes { id title status publishedAt author { id } tags { name } } } }"""
    tagged = (await api.data(query, {"f": {"tag": "  PostgreSQL "}}))["posts"]
    expected = await table(
        api.engine,
        "SELECT pt.post_id FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
        "WHERE t.name = 'postgresql' ORDER BY pt.post_id",
    )
    assert tagged["totalCount"] == len(expected) > 0
    assert all("postgresql" in [t["name"] for t in n["tags"]] for n in tagged["nodes"])

    author = "VXNlcjoz"  # User:3
    mine = (await api.data(query, {"f": {"authorId": author, "status": "DRAFT"}}))["posts"]
    expected = await table(
        api.engine, "SELECT id FROM posts WHERE author_id = 3 AND status = 'draft' ORDER BY id"
    )
    assert [pk(n["id"]) for n in mine["nodes"]] == [r["id"] for r in expected]
    assert all(n["author"]["id"] == author and n["status"] == "DRAFT" for n in mine["nodes"])

    same = (await api.data(query, {"f": {"search": "same title"}}))["posts"]
    ties = await table(api.engine, "SELECT id FROM posts WHERE title = 'Same Title'")
    assert same["totalCount"] == len(ties) > 0

    window = {
        "publishedAfter": "2025-01-01T00:00:00Z",
        "publishedBefore": "2025-07-01T00:00:00+00:00",
    }
    ranged = (await api.data(query, {"f": window}))["posts"]
    assert all("2025-01-01" <= n["publishedAt"][:10] < "2025-07-01" for n in ranged["nodes"])
    count = await table(
        api.engine,
        "SELECT count(*) AS n FROM posts WHERE published_at >= :a AND published_at < :b",
        a=_ts(api, "2025-01-01"),
        b=_ts(api, "2025-07-01"),
    )
    assert ranged["totalCount"] == count[0]["n"] > 0


def _ts(api: App, day: str) -> Any:
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return moment if api.engine.dialect.name == "postgresql" else f"{day} 00:00:00.000000"


async def test_tags_connection_and_lookup(api: App) -> None:
    data = await api.data(
        """{ tags(first: 3, orderBy: {field: NAME, direction: DESC}) { totalCount nodes { name } }
             tag(name: " UNUSED ") { name posts(first: 5) { totalCount nodes { id } } }
             missing: tag(name: "nope") { name } }"""
    )
    names = [r["name"] for r in await table(api.engine, "SELECT name FROM tags ORDER BY name DESC")]
    assert [n["name"] for n in data["tags"]["nodes"]] == names[:3]
    assert data["tags"]["totalCount"] == len(names)
    assert data["tag"] == {"name": "unused", "posts": {"totalCount": 0, "nodes": []}}
    assert data["missing"] is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: 101", "above the page size limit of 100"),
        ("last: 500", "above the page size limit of 100"),
        ("first: -1", "must not be negative"),
        ("first: 1, last: 1", "not both"),
        ('after: "garbage"', "not a valid cursor"),
        ('before: "WyJ0aXRsZSIsIngiLDFd"', "ordering by title"),
    ],
)
async def test_bad_arguments_are_clear_errors(api: App, arguments: str, message: str) -> None:
    body = await api.gql(f"{{ posts({arguments}) {{ totalCount }} }}")
    assert body["data"] is None
    [error] = body["errors"]
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert api.count() == api.sign_in, "arguments are checked before any resolver SQL"


async def test_empty_page_and_zero_first(api: App) -> None:
    conn = (
        await api.data(
            "{ posts(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }"
        )
    )["posts"]
    assert conn["edges"] == [] and conn["pageInfo"] == {"hasNextPage": True, "endCursor": None}
    assert conn["totalCount"] > 0


async def test_before_alone_pages_backward(api: App) -> None:
    walk_all = (await api.data(POSTS_PAGE, {"first": 40}))["posts"]["edges"]
    page = (await api.data(POSTS_PAGE, {"before": walk_all[30]["cursor"]}))["posts"]
    assert [e["cursor"] for e in page["edges"]] == [e["cursor"] for e in walk_all[10:30]]
    assert page["pageInfo"]["hasPreviousPage"] and page["pageInfo"]["hasNextPage"]
