"""Mutations: payloads with server-set values, validation, tags, comments, deletes, caches."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from schema.writes import editable
from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.truth import count_rows, digest, pk, table

POST_FIELDS = """id databaseId title content status publishedAt createdAt updatedAt version
  author { databaseId } tags { name }"""
CREATE = f"""mutation($i: CreatePostInput!) {{ createPost(input: $i) {{ __typename
  ... on PostPayload {{ post {{ {POST_FIELDS} }} }}
  ... on ValidationError {{ fieldErrors {{ field message }} }} }} }}"""
UPDATE = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename
  ... on PostPayload { post { title content version updatedAt } }
  ... on VersionConflict { nodeId currentVersion message }
  ... on ValidationError { fieldErrors { field message } } } }"""


async def create_post(app: App, as_user: int = OWNER, **fields: Any) -> dict[str, Any]:
    """Create a post as ``as_user``; returns the payload's post."""
    values = {"title": "A title", "content": "Some content", **fields}
    data = await app.data(CREATE, {"i": values}, as_user=as_user)
    assert data["createPost"]["__typename"] == "PostPayload", data
    return data["createPost"]["post"]  # type: ignore[no-any-return]


def field_errors(payload: dict[str, Any]) -> dict[str, str]:
    assert payload["__typename"] == "ValidationError", payload
    return {e["field"]: e["message"] for e in payload["fieldErrors"]}


async def test_create_post_returns_server_set_values(write_app: App) -> None:
    write_app.statements.clear()
    post = await create_post(
        write_app, title="  Hello, world  ", tagNames=[" Python ", "brand-new", "SQL"], publish=True
    )
    # Viewer; INSERT posts RETURNING; INSERT tags ON CONFLICT DO NOTHING; SELECT tags;
    # INSERT post_tags. The payload's author is the viewer's row, read in this transaction
    # (schema.writes.viewer_check); then the postPublished event goes out with the commit
    # (its outbox row: not counted as an insert).
    inserts = [
        s
        for s in write_app.statements
        if s.lstrip().upper().startswith("INSERT") and "INTO events" not in s
    ]
    expected = 5 + write_app.publish_statements
    assert len(inserts) == 3 and write_app.count() == expected, write_app.statements
    assert post["title"] == "Hello, world" and post["status"] == "PUBLISHED"
    assert post["version"] == 1 and post["createdAt"] == post["updatedAt"]
    assert post["publishedAt"] is not None
    assert post["author"] == {"databaseId": str(OWNER)}
    by_id = await table(
        write_app.engine,
        "SELECT name FROM tags WHERE name IN ('python', 'brand-new', 'sql') ORDER BY id",
    )
    assert [t["name"] for t in post["tags"]] == [r["name"] for r in by_id]  # oldest tag first
    row = (await table(write_app.engine, "SELECT * FROM posts WHERE id = :i", i=pk(post["id"])))[0]
    assert row["title"] == "Hello, world" and row["author_id"] == OWNER
    assert (
        await count_rows(write_app.engine, "SELECT count(*) FROM tags WHERE name = 'python'") == 1
    )


async def test_a_new_post_is_a_draft_unless_published(write_app: App) -> None:
    post = await create_post(write_app)
    assert post["status"] == "DRAFT" and post["publishedAt"] is None and post["tags"] == []


async def test_create_posts_inserts_many_rows_in_one_statement_per_table(write_app: App) -> None:
    posts = [
        {"title": f"Post {i}", "content": "x", "tagNames": ["bulk", f"t{i}"], "publish": i % 2 == 0}
        for i in range(30)
    ]
    write_app.statements.clear()
    data = await write_app.data(
        """mutation($p: [CreatePostInput!]!) { createPosts(input: {posts: $p}) { __typename
           ... on CreatePostsPayload { posts { title status tags { name } } } } }""",
        {"p": posts},
        as_user=OWNER,
    )
    created = data["createPosts"]["posts"]
    assert [p["title"] for p in created] == [f"Post {i}" for i in range(30)]
    assert created[1]["status"] == "DRAFT" and created[2]["status"] == "PUBLISHED"
    assert [t["name"] for t in created[7]["tags"]] == ["bulk", "t7"]
    inserts = [s for s in write_app.statements if s.lstrip().upper().startswith("INSERT")]
    tables = [s.split()[2] for s in inserts]
    assert tables in (["posts", "tags", "post_tags"], ["posts", "tags", "post_tags", "events"])
    # The tags come primed from the write: no statement reads them back per post. The
    # published posts' events go out in one statement too.
    assert write_app.count() == 5 + write_app.publish_statements, write_app.statements


async def test_create_posts_reports_errors_per_item_and_writes_nothing(write_app: App) -> None:
    before = await digest(write_app.engine)
    query = """mutation($p: [CreatePostInput!]!) { createPosts(input: {posts: $p}) { __typename
               ... on ValidationError { fieldErrors { field message } } } }"""
    items = [{"title": "fine"}, {"title": ""}, {"title": "ok", "tagNames": ["a", "A "]}]
    errors = field_errors((await write_app.data(query, {"p": items}, as_user=OWNER))["createPosts"])
    assert errors == {
        "posts.1.title": "Must not be empty.",
        "posts.2.tagNames.1": "Repeats tagNames.0 ('a').",
    }
    too_many = [{"title": str(i)} for i in range(101)]
    errors = field_errors(
        (await write_app.data(query, {"p": too_many}, as_user=OWNER))["createPosts"]
    )
    assert errors == {"posts": "Give 1 to 100 posts (this is 101)."}
    assert await digest(write_app.engine) == before


async def test_every_limit_is_a_clear_field_error(write_app: App) -> None:
    before = await digest(write_app.engine)
    cases = [
        ({"title": "t" * 201}, "title", "Use at most 200 characters (this is 201)."),
        ({"title": " \t "}, "title", "Must not be empty."),
        ({"content": "c" * 100_001}, "content", "Use at most 100000 characters (this is 100001)."),
        (
            {"tagNames": [f"t{i}" for i in range(11)]},
            "tagNames",
            "A post has at most 10 tags (this is 11).",
        ),
        ({"tagNames": ["x" * 51]}, "tagNames.0", "Use at most 50 characters (this is 51)."),
        ({"tagNames": [" "]}, "tagNames.0", "Must not be empty."),
        (
            {"title": "nul\x00"},
            "title",
            "Contains a character that cannot be stored (NUL or a lone surrogate).",
        ),
        # Lower-casing lengthens "İ" (one code point) to "i̇" (two): checked as stored.
        ({"tagNames": ["İ" * 30]}, "tagNames.0", "Use at most 50 characters (this is 60)."),
    ]
    for fields, field, message in cases:
        values = {"title": "ok", **fields}
        payload = (await write_app.data(CREATE, {"i": values}, as_user=OWNER))["createPost"]
        assert field_errors(payload) == {field: message}
    user = """mutation($i: UpdateUserInput!) { updateUser(input: $i) { __typename
              ... on ValidationError { fieldErrors { field message } } } }"""
    payload = (
        await write_app.data(
            user,
            {"i": {"id": "2", "expectedVersion": 1, "name": "n" * 101, "bio": "b" * 2001}},
            as_user=OWNER,
        )
    )["updateUser"]
    assert set(field_errors(payload)) == {"name", "bio"}
    register = """mutation($e: String!) {
      register(input: {email: $e, name: "n", password: "long enough"}) {
        ... on ValidationError { fieldErrors { field } } } }"""
    long_email = "İ" * 200 + "@example.com"  # 212 characters as sent, 412 as stored
    fields = (await write_app.data(register, {"e": long_email}))["register"]["fieldErrors"]
    assert fields == [{"field": "email"}]
    comment = """mutation($b: String!) { addComment(input: {postId: "1", body: $b}) {
                 __typename ... on ValidationError { fieldErrors { field message } } } }"""
    for body in ("", "b" * 10_001):
        payload = (await write_app.data(comment, {"b": body}, as_user=OWNER))["addComment"]
        assert set(field_errors(payload)) == {"body"}
    assert await digest(write_app.engine) == before


async def test_update_post_checks_the_expected_version(write_app: App) -> None:
    post = await create_post(write_app)
    stale = await write_app.data(
        UPDATE, {"i": {"id": post["id"], "expectedVersion": 7, "title": "x"}}, as_user=OWNER
    )
    assert stale["updatePost"]["__typename"] == "VersionConflict"
    assert stale["updatePost"]["currentVersion"] == 1
    assert stale["updatePost"]["nodeId"] == post["id"]
    updated = await write_app.data(
        UPDATE, {"i": {"id": post["id"], "expectedVersion": 1, "title": "New"}}, as_user=OWNER
    )
    result = updated["updatePost"]
    assert result["__typename"] == "PostPayload"
    assert result["post"]["title"] == "New" and result["post"]["content"] == "Some content"
    assert result["post"]["version"] == 2 and result["post"]["updatedAt"] >= post["updatedAt"]
    again = await write_app.data(
        UPDATE, {"i": {"id": post["id"], "expectedVersion": 1, "content": "lost?"}}, as_user=OWNER
    )
    assert again["updatePost"]["currentVersion"] == 2
    row = (await table(write_app.engine, "SELECT * FROM posts WHERE id = :i", i=pk(post["id"])))[0]
    assert (row["title"], row["content"], row["version"]) == ("New", "Some content", 2)


async def test_publish_unpublish_and_set_tags(write_app: App) -> None:
    post = await create_post(write_app, tagNames=["keep", "drop"])
    query = """mutation($id: ID!) {
      publish: publishPost(input: {id: $id}) {
        ... on PostPayload { post { status publishedAt version } } }
      again: publishPost(input: {id: $id}) { ... on PostPayload { post { version } } }
      tags: setPostTags(input: {postId: $id, tagNames: ["Keep", "fresh"]}) {
        ... on PostPayload { post { version tags { name } } } }
      unpublish: unpublishPost(input: {id: $id}) {
        ... on PostPayload { post { status publishedAt version } } } }"""
    data = await write_app.data(query, {"id": post["id"]}, as_user=OWNER)
    assert data["publish"]["post"]["status"] == "PUBLISHED"
    assert data["publish"]["post"]["publishedAt"] is not None
    assert data["publish"]["post"]["version"] == 2
    assert data["again"]["post"]["version"] == 2  # already published: nothing to change
    assert data["tags"]["post"]["version"] == 3
    assert sorted(t["name"] for t in data["tags"]["post"]["tags"]) == ["fresh", "keep"]
    assert data["unpublish"]["post"] == {"status": "DRAFT", "publishedAt": None, "version": 4}
    links = await table(
        write_app.engine,
        "SELECT t.name FROM post_tags pt JOIN tags t ON t.id = pt.tag_id WHERE pt.post_id = :i "
        "ORDER BY t.name",
        i=pk(post["id"]),
    )
    assert [r["name"] for r in links] == ["fresh", "keep"]


async def test_comments_on_published_posts_and_own_drafts_only(write_app: App) -> None:
    add = """mutation($p: ID!) { addComment(input: {postId: $p, body: " Nice "}) { __typename
             ... on CommentPayload { comment { body version author { databaseId }
                                               post { comments { totalCount } } } } } }"""
    published = await create_post(write_app, publish=True)
    draft = await create_post(write_app)
    ok = (await write_app.data(add, {"p": published["id"]}, as_user=OTHER))["addComment"]
    assert ok["comment"]["body"] == "Nice" and ok["comment"]["version"] == 1
    assert ok["comment"]["author"] == {"databaseId": str(OTHER)}
    # The post's comment count, read after the write in the same operation, includes it.
    assert ok["comment"]["post"]["comments"]["totalCount"] == 1
    own = (await write_app.data(add, {"p": draft["id"]}, as_user=OWNER))["addComment"]
    assert own["__typename"] == "CommentPayload"
    other = (await write_app.data(add, {"p": draft["id"]}, as_user=OTHER))["addComment"]
    assert other["__typename"] == "NotFound"  # another member cannot see the draft
    admin = (await write_app.data(add, {"p": draft["id"]}, as_user=ADMIN_ID))["addComment"]
    assert admin["__typename"] == "Forbidden"


async def test_update_and_delete_comment(write_app: App) -> None:
    published = await create_post(write_app, publish=True)
    added = await write_app.data(
        """mutation($p: ID!) { addComment(input: {postId: $p, body: "first"}) {
           ... on CommentPayload { comment { id } } } }""",
        {"p": published["id"]},
        as_user=OTHER,
    )
    comment_id = added["addComment"]["comment"]["id"]
    update = """mutation($i: ID!, $v: Int!) { updateComment(input: {id: $i, expectedVersion: $v,
                body: "second"}) { __typename ... on CommentPayload { comment { body version } }
                ... on VersionConflict { currentVersion } } }"""
    done = await write_app.data(update, {"i": comment_id, "v": 1}, as_user=OTHER)
    assert done["updateComment"] == {
        "__typename": "CommentPayload",
        "comment": {"body": "second", "version": 2},
    }
    stale = await write_app.data(update, {"i": comment_id, "v": 1}, as_user=OTHER)
    assert stale["updateComment"] == {"__typename": "VersionConflict", "currentVersion": 2}
    deleted = await write_app.data(
        "mutation($i: ID!) { deleteComment(input: {id: $i}) { ... on DeleteCommentPayload "
        "{ deletedId } } }",
        {"i": comment_id},
        as_user=OTHER,
    )
    assert deleted["deleteComment"]["deletedId"] == comment_id
    assert (
        await count_rows(
            write_app.engine, "SELECT count(*) FROM comments WHERE id = :i", i=pk(comment_id)
        )
        == 0
    )


async def test_delete_user_removes_their_posts_comments_and_post_tags(write_app: App) -> None:
    engine = write_app.engine
    post = await create_post(write_app, tagNames=["mine", "shared"], publish=True)
    await write_app.data(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "on mine"}) { __typename } }',
        {"p": post["id"]},
        as_user=OTHER,
    )
    owned = {
        "posts": "SELECT count(*) FROM posts WHERE author_id = :u",
        "comments by them": "SELECT count(*) FROM comments WHERE author_id = :u",
        "comments on their posts": "SELECT count(*) FROM comments c JOIN posts p "
        "ON p.id = c.post_id WHERE p.author_id = :u",
        "post_tags": "SELECT count(*) FROM post_tags pt JOIN posts p ON p.id = pt.post_id "
        "WHERE p.author_id = :u",
    }
    for sql in owned.values():
        assert await count_rows(engine, sql, u=OWNER) > 0
    users, tags = (
        await count_rows(engine, "SELECT count(*) FROM users"),
        await count_rows(engine, "SELECT count(*) FROM tags"),
    )
    comments_elsewhere = await count_rows(
        engine,
        "SELECT count(*) FROM comments c JOIN posts p ON p.id = c.post_id "
        "WHERE p.author_id <> :u AND c.author_id <> :u",
        u=OWNER,
    )
    data = await write_app.data(
        'mutation { deleteUser(input: {id: "2"}) { ... on DeleteUserPayload { deletedId } } }',
        as_user=ADMIN_ID,
    )
    assert pk(data["deleteUser"]["deletedId"]) == OWNER
    for name, sql in owned.items():
        assert await count_rows(engine, sql, u=OWNER) == 0, name
    assert await count_rows(engine, "SELECT count(*) FROM users") == users - 1
    assert await count_rows(engine, "SELECT count(*) FROM tags") == tags  # tags are shared
    assert (
        await count_rows(
            engine,
            "SELECT count(*) FROM comments c JOIN posts p ON p.id = c.post_id "
            "WHERE p.author_id <> :u AND c.author_id <> :u",
            u=OWNER,
        )
        == comments_elsewhere
    )
    orphans = "SELECT count(*) FROM post_tags WHERE post_id NOT IN (SELECT id FROM posts)"
    assert await count_rows(engine, orphans) == 0


async def test_update_user_profile_email_and_role(write_app: App) -> None:
    query = """mutation($i: UpdateUserInput!) { updateUser(input: $i) { __typename
               ... on UserPayload { user { name bio email role version } }
               ... on EmailTaken { email } ... on MutationError { message } } }"""
    mine = {"id": "2", "expectedVersion": 1, "name": " Renamed ", "bio": "Hello"}
    done = (await write_app.data(query, {"i": mine}, as_user=OWNER))["updateUser"]
    assert done["user"]["name"] == "Renamed" and done["user"]["bio"] == "Hello"
    assert done["user"]["version"] == 2 and done["user"]["role"] == "MEMBER"
    taken = {"id": "2", "expectedVersion": 2, "email": "Admin@Example.com"}
    result = (await write_app.data(query, {"i": taken}, as_user=OWNER))["updateUser"]
    assert result["__typename"] == "EmailTaken" and result["email"] == "admin@example.com"
    promote = {"id": "2", "expectedVersion": 2, "role": "ADMIN"}
    refused = (await write_app.data(query, {"i": promote}, as_user=OWNER))["updateUser"]
    assert refused == {"__typename": "Forbidden", "message": "You may not change roles."}
    promoted = (await write_app.data(query, {"i": promote}, as_user=ADMIN_ID))["updateUser"]
    assert promoted["user"]["role"] == "ADMIN"
    cleared = {"id": "2", "expectedVersion": 3, "bio": None, "email": "New@Example.com"}
    result = (await write_app.data(query, {"i": cleared}, as_user=OWNER))["updateUser"]
    assert result["user"]["bio"] is None and result["user"]["email"] == "new@example.com"


async def test_each_field_reads_what_the_previous_fields_wrote(write_app: App) -> None:
    post = await create_post(write_app, publish=True)
    query = """mutation($id: ID!) {
      a: updatePost(input: {id: $id, expectedVersion: 1, title: "Changed"}) {
        ... on PostPayload { post { title } } }
      b: addComment(input: {postId: $id, body: "hi"}) {
        ... on CommentPayload { comment { post { title version comments { totalCount } } } } }
      c: setPostTags(input: {postId: $id, tagNames: ["late"]}) {
        ... on PostPayload { post { title version tags { name } } } } }"""
    data = await write_app.data(query, {"id": post["id"]}, as_user=OWNER)
    assert data["b"]["comment"]["post"] == {
        "title": "Changed",
        "version": 2,
        "comments": {"totalCount": 1},
    }
    assert data["c"]["post"] == {"title": "Changed", "version": 3, "tags": [{"name": "late"}]}


async def test_a_post_cannot_vanish_while_a_comment_is_added(
    write_app: App, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Another transaction deletes the post between addComment's check and its INSERT.

    PostgreSQL: the check locked the post (FOR SHARE), so the delete has to wait, and the
    comment is added. SQLite takes no row locks: the delete goes through and the INSERT's
    foreign key catches it, a NotFound rather than a server error.
    """
    post = await create_post(write_app, publish=True)
    real_load = editable.load_for_write
    delete_failed: list[str] = []

    async def load_then_delete(ctx: Any, entity: Any, pk: int, **kwargs: Any) -> Any:
        row = await real_load(ctx, entity, pk, **kwargs)
        async with write_app.engine.connect() as conn:
            try:
                async with conn.begin():
                    if backend == "postgresql":
                        await conn.execute(text("SET LOCAL lock_timeout = '300ms'"))
                    await conn.execute(text("DELETE FROM posts WHERE id = :i"), {"i": pk})
            except DBAPIError as exc:
                delete_failed.append(str(exc.orig))
        return row

    monkeypatch.setattr(editable, "load_for_write", load_then_delete)
    body = await write_app.gql(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "racing"}) { __typename } }',
        {"p": post["id"]},
        as_user=OTHER,
    )
    comments = "SELECT count(*) FROM comments WHERE body = 'racing'"
    if backend == "postgresql":
        assert delete_failed and "lock" in delete_failed[0]
        assert body["data"] == {"addComment": {"__typename": "CommentPayload"}}
        assert await count_rows(write_app.engine, comments) == 1
    else:
        assert not delete_failed
        assert body["data"] == {"addComment": {"__typename": "NotFound"}}
        assert body["extensions"]["transaction"] == "rolled_back"
        assert await count_rows(write_app.engine, comments) == 0
