"""Drafts are visible only to their author and admins, on every read path."""

from __future__ import annotations

from typing import Any

from schema.reads import loaders
from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.test_mutations import create_post
from tests.truth import count_rows

#: A member who is neither the author nor ``OTHER`` (the seed's fifth user).
THIRD = 5
READERS = {"anonymous": None, "other member": OTHER, "author": OWNER, "admin": ADMIN_ID}


async def _draft_with_comment(app: App) -> tuple[str, str]:
    draft = await create_post(app, title="Secret draft", tagNames=["hush"])
    data = await app.data(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "note to self"}) '
        "{ ... on CommentPayload { comment { id } } } }",
        {"p": draft["id"]},
        as_user=OWNER,
    )
    return draft["id"], data["addComment"]["comment"]["id"]


PATHS = """query($post: ID!, $comment: ID!) {
  post(id: $post) { title }
  node(id: $post) { id }
  comment: node(id: $comment) { id }
  nodes(ids: [$post, $comment]) { id }
  posts(first: 100, filter: {search: "Secret"}) { totalCount nodes { title } }
  drafts: posts(filter: {status: DRAFT}) { totalCount }
  author: user(id: "2") {
    posts(first: 100, filter: {search: "Secret"}) { totalCount nodes { title } }
    comments(first: 100) { totalCount nodes { body } } }
  tag(name: "hush") { posts { totalCount nodes { title } } }
  tags(first: 100) { nodes { name } }
}"""


def _sees(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "post(id)": data["post"] is not None,
        "node(post)": data["node"] is not None,
        "node(comment)": data["comment"] is not None,
        "nodes": [n is not None for n in data["nodes"]],
        "posts": data["posts"]["totalCount"],
        "posts nodes": len(data["posts"]["nodes"]),
        "User.posts": data["author"]["posts"]["totalCount"],
        "User.posts nodes": len(data["author"]["posts"]["nodes"]),
        "User.comments has it": "note to self"
        in [c["body"] for c in data["author"]["comments"]["nodes"]],
        "tag(name)": data["tag"] is not None,
        "Tag.posts": data["tag"] and data["tag"]["posts"]["totalCount"],
        "tags": "hush" in [t["name"] for t in data["tags"]["nodes"]],
    }


async def test_a_draft_is_hidden_from_everyone_but_its_author_and_admins(write_app: App) -> None:
    post_id, comment_id = await _draft_with_comment(write_app)
    seen = {}
    for reader, user in READERS.items():
        data = await write_app.data(PATHS, {"post": post_id, "comment": comment_id}, as_user=user)
        seen[reader] = _sees(data)
    visible = {
        "post(id)": True,
        "node(post)": True,
        "node(comment)": True,
        "nodes": [True, True],
        "posts": 1,
        "posts nodes": 1,
        "User.posts": 1,
        "User.posts nodes": 1,
        "User.comments has it": True,
        "tag(name)": True,
        "Tag.posts": 1,
        "tags": True,
    }
    hidden = {
        key: (0 if isinstance(value, int) and not isinstance(value, bool) else value)
        for key, value in visible.items()
    }
    hidden.update(
        {
            "post(id)": False,
            "node(post)": False,
            "node(comment)": False,
            "nodes": [False, False],
            "User.comments has it": False,
            # A tag only a draft carries is as private as the draft.
            "tag(name)": False,
            "Tag.posts": None,
            "tags": False,
        }
    )
    assert seen == {
        "anonymous": hidden,
        "other member": hidden,
        "author": visible,
        "admin": visible,
    }


async def test_draft_counts_match_the_table_for_each_reader(write_app: App) -> None:
    engine = write_app.engine
    published = await count_rows(engine, "SELECT count(*) FROM posts WHERE status = 'published'")
    own_drafts = await count_rows(
        engine, "SELECT count(*) FROM posts WHERE status = 'draft' AND author_id = :u", u=OWNER
    )
    everything = await count_rows(engine, "SELECT count(*) FROM posts")
    query = "{ posts { totalCount } drafts: posts(filter: {status: DRAFT}) { totalCount } }"
    counts = {reader: await write_app.data(query, as_user=user) for reader, user in READERS.items()}
    others = await count_rows(
        engine, "SELECT count(*) FROM posts WHERE status = 'draft' AND author_id = :u", u=OTHER
    )
    assert counts["other member"]["drafts"]["totalCount"] == others
    assert counts["anonymous"]["posts"]["totalCount"] == published
    assert counts["anonymous"]["drafts"]["totalCount"] == 0
    assert counts["author"]["posts"]["totalCount"] == published + own_drafts
    assert counts["author"]["drafts"]["totalCount"] == own_drafts
    assert counts["admin"]["posts"]["totalCount"] == everything


async def test_unpublishing_hides_a_post_and_its_comments_again(write_app: App) -> None:
    post = await create_post(write_app, publish=True, title="Briefly public")
    await write_app.data(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "saw it"}) { __typename } }',
        {"p": post["id"]},
        as_user=OTHER,
    )
    await write_app.data(
        "mutation($p: ID!) { unpublishPost(input: {id: $p}) { __typename } }",
        {"p": post["id"]},
        as_user=OWNER,
    )
    mine = await write_app.data(
        '{ user(id: "3") { comments(first: 100) { nodes { body } } } }', as_user=OTHER
    )
    assert "saw it" not in [c["body"] for c in mine["user"]["comments"]["nodes"]]
    assert (
        await write_app.data(
            "query($p: ID!) { post(id: $p) { id } }", {"p": post["id"]}, as_user=OTHER
        )
    )["post"] is None


async def test_members_share_statements_and_each_reads_as_themselves(write_app: App) -> None:
    """Issue 19: a member's id in the visibility conditions is a parameter, so the batch and
    page statements one member's query built serve the next member's (each was about 50 KB
    with its compiled form, ten or so per member, kept up to the cache's bound), and each
    still reads as themselves: the statements another member's query built show the author
    their draft, and show it to nobody else."""
    post_id, comment_id = await _draft_with_comment(write_app)
    variables = {"post": post_id, "comment": comment_id}
    loaders._statements.clear()  # none of an earlier test's members' statements
    other = _sees(await write_app.data(PATHS, variables, as_user=OTHER))
    kept = len(loaders._statements)
    third = _sees(await write_app.data(PATHS, variables, as_user=THIRD))
    assert len(loaders._statements) == kept, "another member's query built statements again"
    author = _sees(await write_app.data(PATHS, variables, as_user=OWNER))
    assert other == third
    assert other["User.posts"] == 0 and not other["User.comments has it"]
    assert other["nodes"] == [False, False] and not other["tags"]
    assert author["User.posts"] == 1 and author["User.comments has it"]
    assert author["nodes"] == [True, True] and author["tags"]
