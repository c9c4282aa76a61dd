"""Folding: a post's author and tags are read in the statement that reads the post.

The differential test (``test_executor``) checks that folded reads answer as graphql-core's
separate ones; these check the statements themselves.
"""

from __future__ import annotations

import pytest

from tests.conftest import App
from tests.truth import table

pytestmark = pytest.mark.usefixtures("postgres_only")


@pytest.fixture
def postgres_only(api: App) -> None:
    if api.settings.is_sqlite:
        pytest.skip("only reads on the driver (PostgreSQL's) fold to-one fields")


async def _truth(api: App, post_id: int) -> dict[str, object]:
    [row] = await table(
        api.engine,
        "SELECT p.title, u.name, u.bio FROM posts p JOIN users u ON u.id = p.author_id "
        "WHERE p.id = :id",
        id=post_id,
    )
    return row


async def _tags(api: App, post_id: int) -> list[str]:
    rows = await table(
        api.engine,
        "SELECT t.name FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
        "WHERE pt.post_id = :id ORDER BY t.id",
        id=post_id,
    )
    return [row["name"] for row in rows]


async def test_a_post_its_author_and_its_tags_are_one_statement(api: App) -> None:
    data = await api.data('{ post(id: "3") { title author { name } tags { name } } }')
    statements = list(api.statements)
    truth = await _truth(api, 3)
    assert data["post"]["title"] == truth["title"]
    assert data["post"]["author"] == {"name": truth["name"]}
    posts = [s for s in statements if "FROM posts" in s]
    assert len(posts) == 1 and "JOIN users" in posts[0] and "bio" not in posts[0]
    assert not [s for s in statements if s.lstrip().startswith("SELECT users.")]
    assert data["post"]["tags"] == [{"name": name} for name in await _tags(api, 3)]
    assert "array((SELECT row(" in posts[0]
    assert not [s for s in statements if "FROM post_tags" in s.split("array(")[0]]
    assert len(statements) == api.sign_in + 1


async def test_folded_tags_are_each_posts_own_in_order_and_empty_when_none(
    write_app: App,
) -> None:
    created = await write_app.data(
        'mutation { createPost(input: {title: "untagged", publish: true}) '
        "{ ... on PostPayload { post { databaseId } } } }",
        as_user=1,
    )
    untagged = int(created["createPost"]["post"]["databaseId"])
    ids = [3, 4, 5, untagged]
    # Four root fields, one DataLoader batch: one statement reads the four posts' tags.
    query = " ".join(f'p{i}: post(id: "{i}") {{ databaseId tags {{ name }} }}' for i in ids)
    write_app.statements.clear()
    data = await write_app.data(f"{{ {query} }}", as_user=1)
    posts = [s for s in write_app.statements if "FROM posts" in s]
    assert len(posts) == 1 and "array((SELECT row(" in posts[0]
    assert not [s for s in write_app.statements if s.lstrip().startswith("SELECT post_tags")]
    for post_id in ids:
        assert data[f"p{post_id}"] == {
            "databaseId": str(post_id),
            "tags": [{"name": name} for name in await _tags(write_app, post_id)],
        }
    assert data[f"p{untagged}"]["tags"] == []


async def test_two_selections_of_the_author_each_get_what_they_select(api: App) -> None:
    data = await api.data(
        '{ a: post(id: "3") { author { name } } b: post(id: "3") { author { name bio } } '
        'c: post(id: "4") { x: author { name } y: author { bio } } }'
    )
    statements = list(api.statements)
    three, four = await _truth(api, 3), await _truth(api, 4)
    assert data["a"]["author"] == {"name": three["name"]}
    assert data["b"]["author"] == {"name": three["name"], "bio": three["bio"]}
    # One field selected twice differently is not folded: its batches read the users.
    assert data["c"] == {"x": {"name": four["name"]}, "y": {"bio": four["bio"]}}
    assert [s for s in statements if s.lstrip().startswith("SELECT users.")]
