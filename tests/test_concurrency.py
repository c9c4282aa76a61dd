"""Races through real concurrent HTTP requests to a real server process: every one ends in a
typed result, never a 500 or a lost update."""

from __future__ import annotations

from collections import Counter

from tests.conftest import ADMIN_ID, OTHER, OWNER
from tests.live import Live
from tests.truth import count_rows, table

UPDATE = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename
  ... on PostPayload { post { title version } }
  ... on VersionConflict { currentVersion } } }"""


async def test_concurrent_updates_with_one_expected_version_apply_exactly_once(
    live: Live,
) -> None:
    [before] = await table(live.engine, "SELECT * FROM posts WHERE author_id = :u LIMIT 1", u=OWNER)
    assert before["version"] == 1
    requests = [
        (
            UPDATE,
            {"i": {"id": str(before["id"]), "expectedVersion": 1, "title": f"Edit {n}"}},
            OWNER,
        )
        for n in range(20)
    ]
    bodies = await live.all_at_once(requests)
    assert not [b for b in bodies if "errors" in b], bodies
    results = [b["data"]["updatePost"] for b in bodies]
    kinds = Counter(r["__typename"] for r in results)
    assert kinds == {"PostPayload": 1, "VersionConflict": 19}
    [winner] = [r for r in results if r["__typename"] == "PostPayload"]
    assert winner["post"]["version"] == 2
    assert {r["currentVersion"] for r in results if r["__typename"] == "VersionConflict"} == {2}
    [after] = await table(live.engine, "SELECT * FROM posts WHERE id = :i", i=before["id"])
    assert after["version"] == 2 and after["title"] == winner["post"]["title"]
    unchanged = {
        k: v
        for k, v in before.items()
        # PostgreSQL's search_vector is generated from the title (migration 0004).
        if k not in ("title", "version", "updated_at", "search_vector")
    }
    assert {k: after[k] for k in unchanged} == unchanged


async def test_concurrent_registrations_of_one_email_create_one_user(live: Live) -> None:
    register = """mutation($n: String!) { register(input: {email: "race@example.com", name: $n,
                  password: "long enough"}) { __typename } }"""
    bodies = await live.all_at_once([(register, {"n": f"Racer {n}"}, None) for n in range(10)])
    assert not [b for b in bodies if "errors" in b], bodies
    kinds = Counter(b["data"]["register"]["__typename"] for b in bodies)
    assert kinds == {"AuthPayload": 1, "EmailTaken": 9}
    sql = "SELECT count(*) FROM users WHERE email = 'race@example.com'"
    assert await count_rows(live.engine, sql) == 1


async def test_posts_creating_the_same_new_tags_at_once_share_one_row_each(live: Live) -> None:
    create = """mutation($t: [String!]!) { createPost(input: {title: "Racing", tagNames: $t}) {
                __typename ... on PostPayload { post { tags { name } } } } }"""
    names = ["race-a", "race-b", "race-c"]
    requests = [
        (create, {"t": names[n % 3 :] + names[: n % 3]}, OWNER if n % 2 else OTHER)
        for n in range(12)
    ]
    bodies = await live.all_at_once(requests)
    assert not [b for b in bodies if "errors" in b], bodies
    assert {b["data"]["createPost"]["__typename"] for b in bodies} == {"PostPayload"}
    for name in names:
        assert (
            await count_rows(live.engine, "SELECT count(*) FROM tags WHERE name = :n", n=name) == 1
        )
        links = (
            "SELECT count(*) FROM post_tags pt JOIN tags t ON t.id = pt.tag_id WHERE t.name = :n"
        )
        assert await count_rows(live.engine, links, n=name) == 12


async def test_concurrent_profile_updates_with_one_expected_version_apply_exactly_once(
    live: Live,
) -> None:
    """An admin's edits of another member's email and role race the member's own edits."""
    update = """mutation($i: UpdateUserInput!) { updateUser(input: $i) { __typename
                ... on UserPayload { user { version } }
                ... on VersionConflict { currentVersion } } }"""
    requests = [
        (
            update,
            {
                "i": {"id": str(OWNER), "expectedVersion": 1, "email": f"e{n}@example.com"}
                | ({"role": "ADMIN"} if n % 2 else {"name": f"Name {n}"})
            },
            ADMIN_ID if n % 2 else OWNER,
        )
        for n in range(12)
    ]
    bodies = await live.all_at_once(requests)
    assert not [b for b in bodies if "errors" in b], bodies
    kinds = Counter(b["data"]["updateUser"]["__typename"] for b in bodies)
    assert kinds == {"UserPayload": 1, "VersionConflict": 11}
    [row] = await table(live.engine, "SELECT version, email FROM users WHERE id = :u", u=OWNER)
    assert row["version"] == 2 and row["email"].startswith("e")
