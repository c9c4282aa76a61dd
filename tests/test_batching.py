"""N+1 freedom: statements grow with depth, never with rows; per-parent limits are right."""

from __future__ import annotations

from collections import defaultdict

import pytest

from schema.reads.loaders import SharedLoader
from schema.relay.node import to_global_id
from tests.conftest import App
from tests.truth import pk, table

NESTED = """{ users(first: %d) { edges { node { name posts(first: 10) { edges { node { title
  tags { name } comments(first: 5) { edges { node { body author { name } } } } } } } } } } }"""


async def test_nested_query_is_five_statements_whatever_the_page_size(api: App) -> None:
    counts = {}
    for size in (5, 50):
        api.statements.clear()
        data = await api.data(NESTED % size)
        assert len(data["users"]["edges"]) == size
        counts[size] = api.count()
    assert counts[5] == counts[50] <= 5 + api.sign_in, counts


async def test_every_parent_gets_its_own_first_n(api: App) -> None:
    data = await api.data(
        """{ users(first: 61) { nodes { id posts(first: 3) { totalCount nodes { id
              comments(first: 2) { totalCount nodes { id } } } } } } }"""
    )
    posts_by_user: dict[int, list[int]] = defaultdict(list)
    for row in await table(api.engine, "SELECT id, author_id FROM posts ORDER BY id"):
        posts_by_user[row["author_id"]].append(row["id"])
    comments_by_post: dict[int, list[int]] = defaultdict(list)
    for row in await table(api.engine, "SELECT id, post_id FROM comments ORDER BY id"):
        comments_by_post[row["post_id"]].append(row["id"])
    users = data["users"]["nodes"]
    assert len(users) == 61
    for user in users:
        mine = posts_by_user[pk(user["id"])]
        assert [pk(p["id"]) for p in user["posts"]["nodes"]] == mine[:3]
        assert user["posts"]["totalCount"] == len(mine)
        for post in user["posts"]["nodes"]:
            theirs = comments_by_post[pk(post["id"])]
            assert [pk(c["id"]) for c in post["comments"]["nodes"]] == theirs[:2]
            assert post["comments"]["totalCount"] == len(theirs)
    lonely = next(u for u in users if pk(u["id"]) == 1000)
    assert lonely["posts"] == {"totalCount": 0, "nodes": []}


async def test_nested_last_and_cursors_apply_per_parent(api: App) -> None:
    data = await api.data(
        """{ users(first: 4) { nodes { id
              newest: posts(last: 2) { nodes { id } pageInfo { hasPreviousPage hasNextPage } }
              all: posts(first: 100, orderBy: {field: TITLE, direction: DESC}) {
                edges { cursor node { id } } } } } }"""
    )
    for user in data["users"]["nodes"]:
        truth = await table(
            api.engine, "SELECT id FROM posts WHERE author_id = :a ORDER BY id", a=pk(user["id"])
        )
        ids = [r["id"] for r in truth]
        assert [pk(p["id"]) for p in user["newest"]["nodes"]] == ids[-2:]
        assert user["newest"]["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}
        titled = await table(
            api.engine,
            "SELECT id FROM posts WHERE author_id = :a ORDER BY title DESC, id DESC",
            a=pk(user["id"]),
        )
        assert [pk(e["node"]["id"]) for e in user["all"]["edges"]] == [r["id"] for r in titled]
    # A cursor from one user's list, passed to every user's list: each is cut at that position.
    first_user = data["users"]["nodes"][0]
    cursor = first_user["all"]["edges"][3]["cursor"]
    after = await api.data(
        """query($c: String) { users(first: 1) { nodes { posts(first: 100, after: $c,
             orderBy: {field: TITLE, direction: DESC}) { nodes { id } } } } }""",
        {"c": cursor},
    )
    rest = after["users"]["nodes"][0]["posts"]["nodes"]
    assert [p["id"] for p in rest] == [e["node"]["id"] for e in first_user["all"]["edges"][4:]]


async def test_many_to_many_is_batched_both_ways(api: App) -> None:
    data = await api.data(
        """{ tags(first: 13) { nodes { name posts(first: 4, filter: {status: PUBLISHED}) {
              totalCount nodes { id status tags { name databaseId } } } } } }"""
    )
    # tags, posts per tag (window), counts per tag, tags per post
    assert api.count() == api.sign_in + 4
    for tag in data["tags"]["nodes"]:
        truth = await table(
            api.engine,
            "SELECT p.id FROM posts p JOIN post_tags pt ON pt.post_id = p.id "
            "JOIN tags t ON t.id = pt.tag_id WHERE t.name = :n AND p.status = 'published' "
            "ORDER BY p.id",
            n=tag["name"],
        )
        ids = [r["id"] for r in truth]
        assert [pk(p["id"]) for p in tag["posts"]["nodes"]] == ids[:4]
        assert tag["posts"]["totalCount"] == len(ids)
        for post in tag["posts"]["nodes"]:
            assert tag["name"] in [t["name"] for t in post["tags"]]
            ids = [int(t["databaseId"]) for t in post["tags"]]
            assert ids == sorted(ids)


@pytest.mark.parametrize("with_count", [False, True])
async def test_total_count_is_queried_only_when_selected(api: App, with_count: bool) -> None:
    count = "totalCount" if with_count else ""
    nested = f"posts(first: 2) {{ {count} nodes {{ id }} }}"
    await api.data(f"{{ users(first: 20) {{ {count} nodes {{ {nested} }} }} }}")
    counting = [s for s in api.statements if "count(" in s.lower()]
    assert len(counting) == (2 if with_count else 0)
    assert api.count() == api.sign_in + (4 if with_count else 2)


async def test_same_object_reached_twice_is_loaded_once(api: App) -> None:
    await api.data(
        """{ a: user(id: "1") { name } b: user(id: "VXNlcjox") { name }
             c: post(id: "1") { author { name }
                                comments(first: 3) { nodes { author { name } post { id } } } } }"""
    )
    # users by id (a, b, post author, comment authors share batches), post, comments, post by id
    assert api.count() <= api.sign_in + 5


async def test_nested_backward_paging_with_before(api: App) -> None:
    query = """query($before: String) { users(first: 3) { nodes { id
        posts(last: 2, before: $before, orderBy: {field: PUBLISHED_AT, direction: DESC}) {
          edges { cursor node { id } } pageInfo { hasPreviousPage hasNextPage } } } } }"""
    first = await api.data(query, {"before": None})
    for user in first["users"]["nodes"]:
        ordered = await table(
            api.engine,
            "SELECT id FROM posts WHERE author_id = :a "
            "ORDER BY published_at DESC NULLS LAST, id DESC",
            a=pk(user["id"]),
        )
        ids = [r["id"] for r in ordered]
        edges = user["posts"]["edges"]
        assert [pk(e["node"]["id"]) for e in edges] == ids[-2:]
        # Step back once more from this user's page: the two before it.
        again = await api.data(query, {"before": edges[0]["cursor"]})
        mine = next(u for u in again["users"]["nodes"] if u["id"] == user["id"])
        assert [pk(e["node"]["id"]) for e in mine["posts"]["edges"]] == ids[-4:-2]


async def test_root_lookups_batch_together_and_one_alone_waits_for_no_batch(
    api: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root fields looking objects up by id share one DataLoader batch (one statement); an
    # operation's only root field reads straight through the batch function, no future.
    futures: list[object] = []
    original = SharedLoader.load

    def load(self: SharedLoader, key: object) -> object:
        futures.append(key)
        return original(self, key)

    monkeypatch.setattr(SharedLoader, "load", load)
    titles = {
        row["id"]: row["title"]
        for row in await table(api.engine, "SELECT id, title FROM posts WHERE id IN (3, 4)")
    }
    api.statements.clear()
    three, four = to_global_id("Post", 3), to_global_id("Post", 4)
    data = await api.data(
        f'{{ a: post(id: "3") {{ title }} b: node(id: "{four}") {{ ... on Post {{ title }} }} '
        f'c: user(id: "{to_global_id("User", 2)}") {{ name }} }}'
    )
    assert data["a"] == {"title": titles[3]} and data["b"] == {"title": titles[4]}
    assert len(futures) == 3
    assert len([s for s in api.statements if "FROM posts" in s]) == 1
    futures.clear()
    api.statements.clear()
    data = await api.data(f'{{ node(id: "{three}") {{ ... on Post {{ title }} }} }}')
    assert data["node"] == {"title": titles[3]}
    assert futures == [] and api.count() == api.sign_in + 1
