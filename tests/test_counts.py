"""Counts readers see: ``Post.commentCount``, ``Tag.postCount``, ``User.postCount`` and tags
ordered by their post count.

Each count is its connection's ``totalCount`` for the same viewer (drafts counted only for
those who may see them), read for all the parents of a level in one statement.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from graphql import parse

from schema import build_schema
from schema.engine.selected_types import selected_types
from schema.reads.tables_read import tables_of
from settings import Settings
from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.test_limits import cost_of
from tests.test_mutations import create_post
from tests.truth import pk, table

COUNTS = """{
  users(first: 100) { nodes { id postCount posts { totalCount } } }
  tags(first: 100) { nodes { id name postCount posts { totalCount } } }
  posts(first: 100) { nodes { id commentCount comments { totalCount } } }
}"""


async def test_each_count_is_its_connections_total_count_and_the_tables(api: App) -> None:
    data = await api.data(COUNTS)  # as the admin, who sees every row
    posts_by_author = Counter(
        r["author_id"] for r in await table(api.engine, "SELECT author_id FROM posts")
    )
    posts_by_tag = Counter(r["tag_id"] for r in await table(api.engine, "SELECT * FROM post_tags"))
    comments_by_post = Counter(
        r["post_id"] for r in await table(api.engine, "SELECT post_id FROM comments")
    )
    users, tags = data["users"]["nodes"], data["tags"]["nodes"]
    posts = data["posts"]["nodes"]
    assert len(users) == 61 and len(tags) == 13 and len(posts) == 100
    for user in users:
        assert user["postCount"] == user["posts"]["totalCount"] == posts_by_author[pk(user["id"])]
    for tag in tags:
        assert tag["postCount"] == tag["posts"]["totalCount"] == posts_by_tag[pk(tag["id"])]
    for post in posts:
        expected = comments_by_post[pk(post["id"])]
        assert post["commentCount"] == post["comments"]["totalCount"] == expected
    # Parents with nothing to count are counted 0, not left out.
    assert next(u for u in users if pk(u["id"]) == 1000)["postCount"] == 0
    assert next(t for t in tags if t["name"] == "unused")["postCount"] == 0
    assert any(p["commentCount"] > 0 for p in posts)


LEVELS = """query($n: Int) { users(first: $n) { nodes { postCount
  posts(first: 3) { nodes { commentCount tags { postCount } } } } }%s }"""
#: Beside a field the breadth-first executor cannot plan, the whole operation runs on
#: graphql-core's per-object resolvers, whose loads of one level batch together too.
ON_GRAPHQL_CORE = " __schema { queryType { name } }"


@pytest.mark.parametrize("executor", ["breadth-first", "graphql-core"])
async def test_one_statement_per_level_however_many_parents(api: App, executor: str) -> None:
    query = LEVELS % ("" if executor == "breadth-first" else ON_GRAPHQL_CORE)
    statements = {}
    for size in (2, 40):
        api.statements.clear()
        data = await api.data(query, {"n": size})
        assert len(data["users"]["nodes"]) == size
        statements[size] = api.count()
    # The users; their post counts; their posts; the posts' comment counts; their tags; the
    # tags' post counts.
    assert statements[2] == statements[40] == api.sign_in + 6, statements
    counting = [s for s in api.statements if "count(" in s.lower()]
    assert len(counting) == 3, counting


async def test_a_count_and_its_connections_total_count_share_one_statement(api: App) -> None:
    await api.data("{ users(first: 30) { nodes { postCount posts { totalCount } } } }")
    counting = [s for s in api.statements if "count(" in s.lower()]
    assert len(counting) == 1, counting
    # The users, their counts, and their posts' page (read for a connection, nodes selected
    # or not).
    assert api.count() == api.sign_in + 3


async def test_tags_ordered_by_post_count_read_their_counts_in_the_page(api: App) -> None:
    order = "orderBy: {field: POST_COUNT, direction: DESC}"
    data = await api.data(f"{{ tags(first: 50, {order}) {{ nodes {{ name postCount }} }} }}")
    tags = data["tags"]["nodes"]
    assert [t["postCount"] for t in tags] == sorted((t["postCount"] for t in tags), reverse=True)
    assert api.count() == api.sign_in + 1  # the page alone: it read the counts it orders by
    api.statements.clear()
    data = await api.data(
        f"{{ tags(first: 50, {order}) {{ nodes {{ postCount posts {{ totalCount }} }} }} }}"
    )
    assert all(t["postCount"] == t["posts"]["totalCount"] for t in data["tags"]["nodes"])
    # The page and the posts' page: their counts are the tags' page's.
    assert len([s for s in api.statements if "count(" in s.lower()]) == 1
    assert api.count() == api.sign_in + 2


async def publish(app: App, name: str, tags: list[str]) -> None:
    """A new post of ``OWNER``'s carrying ``tags``, published."""
    post = await create_post(app, title=name, tagNames=tags)
    await app.data(
        "mutation($p: ID!) { publishPost(input: {id: $p}) { __typename } }",
        {"p": post["id"]},
        as_user=OWNER,
    )


async def _tag_counts(app: App, reader: int | None) -> dict[int, int]:
    """Each tag's number of posts ``reader`` may see (an id, or ``None`` for anonymous):
    every post and tag for the admin, else published posts and the reader's own, and only
    tags one of them carries; from the tables."""
    if reader == ADMIN_ID:
        sql = (
            "SELECT t.id AS id, count(pt.post_id) AS n FROM tags t "
            "LEFT JOIN post_tags pt ON pt.tag_id = t.id GROUP BY t.id"
        )
    else:
        sql = (
            "SELECT pt.tag_id AS id, count(*) AS n FROM post_tags pt "
            "JOIN posts p ON p.id = pt.post_id "
            "WHERE p.status = 'published' OR p.author_id = :me GROUP BY pt.tag_id"
        )
    rows = await table(app.engine, sql, me=-1 if reader is None else reader)
    return {r["id"]: int(r["n"]) for r in rows}


PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $d: OrderDirection!) {
  tags(first: $first, after: $after, last: $last, before: $before,
       orderBy: {field: POST_COUNT, direction: $d}) {
    nodes { databaseId postCount }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


async def _walk(app: App, direction: str, backward: bool, **sign: Any) -> list[tuple[int, int]]:
    """Every tag, by pages of 2 ordered by post count in ``direction``, read forward (or
    ``backward`` from the end); as ``(post count, id)`` in connection order."""
    found: list[tuple[int, int]] = []
    cursor = None
    while True:
        variables: dict[str, Any] = {"d": direction}
        if backward:
            variables.update(last=2, before=cursor)
        else:
            variables.update(first=2, after=cursor)
        connection = (await app.data(PAGE, variables, **sign))["tags"]
        page = [(t["postCount"], int(t["databaseId"])) for t in connection["nodes"]]
        info = connection["pageInfo"]
        if backward:
            found = page + found
            more, cursor = info["hasPreviousPage"], info["startCursor"]
        else:
            found += page
            more, cursor = info["hasNextPage"], info["endCursor"]
        if not more:
            return found


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
async def test_tags_page_by_post_count_across_equal_counts(
    write_app: App, direction: str, backward: bool
) -> None:
    # Equal counts: two new tags on one post each, beside the seed's tags.
    for name in ("tie-a", "tie-b", "tie-c"):
        await publish(write_app, f"On {name}", [name])
    truth = await _tag_counts(write_app, ADMIN_ID)
    assert max(Counter(truth.values()).values()) >= 3  # ties to break by id
    expected = sorted(((n, i) for i, n in truth.items()), reverse=direction == "DESC")
    assert await _walk(write_app, direction, backward, as_user=ADMIN_ID) == expected


READER_COUNTS = """query($post: ID!, $owner: ID!) {
  user(id: $owner) { postCount posts { totalCount } }
  tag(name: "hush") { postCount posts { totalCount } }
  post(id: $post) { commentCount comments { totalCount } }
  tags(first: 100, orderBy: {field: POST_COUNT, direction: DESC}) { nodes { name postCount } }
}"""


async def test_drafts_are_counted_only_for_those_who_may_see_them(write_app: App) -> None:
    draft = await create_post(write_app, title="Secret draft", tagNames=["hush"])
    await publish(write_app, "Public", ["hush"])
    await write_app.data(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "note"}) { __typename } }',
        {"p": draft["id"]},
        as_user=OWNER,
    )
    owned = await table(
        write_app.engine,
        "SELECT status, count(*) AS n FROM posts WHERE author_id = :a GROUP BY status",
        a=OWNER,
    )
    by_status = {r["status"]: int(r["n"]) for r in owned}
    everyone = {"anonymous": None, "other member": OTHER}
    for reader, user in {**everyone, "author": OWNER, "admin": ADMIN_ID}.items():
        sees_drafts = reader not in everyone
        data = await write_app.data(
            READER_COUNTS, {"post": draft["id"], "owner": str(OWNER)}, as_user=user
        )
        expected = by_status["published"] + (by_status.get("draft", 0) if sees_drafts else 0)
        assert data["user"] == {"postCount": expected, "posts": {"totalCount": expected}}, reader
        hush = 2 if sees_drafts else 1
        assert data["tag"] == {"postCount": hush, "posts": {"totalCount": hush}}, reader
        if sees_drafts:
            assert data["post"] == {"commentCount": 1, "comments": {"totalCount": 1}}
        else:
            assert data["post"] is None, reader
        # Ordered by the counts the reader sees: a draft neither adds to a tag's count nor
        # moves it in the order.
        ordered = [t["postCount"] for t in data["tags"]["nodes"]]
        assert ordered == sorted(ordered, reverse=True), reader
        assert {t["name"]: t["postCount"] for t in data["tags"]["nodes"]}["hush"] == hush
        truth = await _tag_counts(write_app, user)
        assert ordered == sorted(truth.values(), reverse=True), reader


def test_a_count_reads_the_tables_it_counts() -> None:
    graphql_schema = build_schema(Settings())._schema

    def tables(document: str) -> frozenset[str]:
        return tables_of(selected_types(graphql_schema, parse(document)))

    # A cached anonymous response is read again after a commit writing any of them.
    assert tables("{ users { nodes { name } } }") == {"users"}
    assert tables("{ users { nodes { postCount } } }") == {"users", "posts"}
    assert tables("{ posts { nodes { commentCount } } }") == {"posts", "comments"}
    assert tables("{ tags { nodes { postCount } } }") == {"tags", "post_tags", "posts"}
    assert tables('{ node(id: "x") { ... on User { postCount } } }') >= {"posts"}


def test_a_count_costs_no_rows_of_its_own_where_its_connection_costs_a_page() -> None:
    # A count is one number per parent, read by one grouped statement: like `totalCount`,
    # it adds nothing to the rows an operation is estimated to read (QueryLimits), while
    # the connection it replaces is estimated at a page per parent.
    assert cost_of("{ users(first: 50) { nodes { postCount } } }") == 50
    assert cost_of("{ users(first: 50) { nodes { posts { totalCount } } } }") == 50 + 50 * 20
    assert (
        cost_of("{ tags(first: 50, orderBy: {field: POST_COUNT}) { nodes { postCount } } }") == 50
    )
