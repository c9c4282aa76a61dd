"""What each mutation costs the database, counted with engine events: every statement a
signed-in mutation sends, BEGIN and COMMIT among them (issue 22: ``addComment`` at most 5).

On PostgreSQL. A mutation's viewer comes from the process's viewer cache when it remembers the
account ("warm") and its row comes in the mutation's first statement, with the row the
mutation changes (``schema.writes.viewer_check``); otherwise ("cold") the row is read first,
alone. Each count below is exact, so a statement added to a write path fails here.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from schema.auth.viewer import Viewer
from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.test_mutations import create_post
from tests.truth import pk, table

#: A member of ``WRITE_SEED`` whom no other test here uses (1 admin, 2 owner, 3 other, 4
#: deactivated).
ANOTHER = 5

ADD = """mutation($p: ID!, $b: String!) { addComment(input: {postId: $p, body: $b}) {
  __typename ... on CommentPayload { comment { id databaseId body createdAt updatedAt version
  author { name } } } } }"""
UPDATE_COMMENT = """mutation($i: UpdateCommentInput!) { updateComment(input: $i) { __typename
  ... on CommentPayload { comment { body version updatedAt } } } }"""
DELETE_COMMENT = """mutation($i: CommentIdInput!) { deleteComment(input: $i) { __typename } }"""
CREATE = """mutation($i: CreatePostInput!) { createPost(input: $i) { __typename
  ... on PostPayload { post { id databaseId version createdAt updatedAt publishedAt
  author { name } tags { name } } } } }"""
UPDATE = """mutation($i: UpdatePostInput!) { updatePost(input: $i) { __typename
  ... on PostPayload { post { title version updatedAt } } } }"""
PUBLISH = """mutation($i: PostIdInput!) { publishPost(input: $i) { __typename
  ... on PostPayload { post { status version publishedAt } } } }"""
UNPUBLISH = PUBLISH.replace("publishPost", "unpublishPost")
DELETE_POST = """mutation($i: PostIdInput!) { deletePost(input: $i) { __typename } }"""
SET_TAGS = """mutation($i: SetPostTagsInput!) { setPostTags(input: $i) { __typename
  ... on PostPayload { post { version tags { name } } } } }"""
UPDATE_USER = """mutation($i: UpdateUserInput!) { updateUser(input: $i) { __typename
  ... on UserPayload { user { name version } } } }"""


@pytest.fixture
def postgres(write_app: App) -> App:
    if write_app.settings.is_sqlite:
        pytest.skip("counted on PostgreSQL (SQLite has no viewer cache and no FOR SHARE)")
    assert write_app.app.state.viewers.trusted
    return write_app


@contextmanager
def counted(app: App) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs, BEGIN and COMMIT (or
    ROLLBACK) included: the cursor's statements (``App.statements``) and the transaction
    events of the engine's connections."""
    sent: list[str] = []
    engine = app.engine.sync_engine

    def begin(_conn: Any) -> None:
        sent.append("BEGIN")

    def commit(_conn: Any) -> None:
        sent.append("COMMIT")

    def rollback(_conn: Any) -> None:
        sent.append("ROLLBACK")

    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        if not text.startswith("DELETE FROM events"):  # the outbox's pruner
            sent.append(" ".join(text.split()))

    listeners = [("begin", begin), ("commit", commit), ("rollback", rollback)]
    listeners.append(("before_cursor_execute", statement))
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield sent
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


async def _warm(app: App, user: int) -> None:
    """Have the process remember ``user`` (a query reads the row once)."""
    await app.data("{ viewer { id } }", as_user=user)
    assert app.app.state.viewers.get(user) is not None


async def _costs(app: App, query: str, variables: dict[str, Any], user: int) -> list[str]:
    with counted(app) as sent:
        body = await app.gql(query, variables, as_user=user)
    assert "errors" not in body, body
    assert body["extensions"]["transaction"] == "committed", body
    return sent


async def test_add_comment_costs_five_statements_with_begin_and_commit(postgres: App) -> None:
    post = await create_post(postgres, publish=True)
    await _warm(postgres, OTHER)
    sent = await _costs(postgres, ADD, {"p": post["id"], "b": "warm"}, OTHER)
    assert sent[0] == "BEGIN" and sent[-1] == "COMMIT", sent
    # The post's check and the viewer's row in one SELECT; the INSERT brings back what the
    # database set; the outbox row and its NOTIFY are one statement.
    select, insert, outbox = sent[1:-1]
    assert select.startswith("SELECT") and "JOIN users AS viewer" in select
    assert "FOR SHARE OF posts" in select
    assert insert.startswith("INSERT INTO comments") and "RETURNING" in insert
    assert "pg_notify" in outbox and "INSERT INTO events" in outbox
    assert len(sent) == 5


async def test_a_cold_viewer_costs_one_statement_more_then_is_remembered(postgres: App) -> None:
    post = await create_post(postgres, publish=True)
    postgres.app.state.viewers.forget({OTHER})
    cold = await _costs(postgres, ADD, {"p": post["id"], "b": "cold"}, OTHER)
    assert len(cold) == 6, cold  # the viewer's row read alone, first
    assert "JOIN users AS viewer" not in cold[3]
    warm = await _costs(postgres, ADD, {"p": post["id"], "b": "then warm"}, OTHER)
    assert len(warm) == 5, warm  # the mutation's own read fed the cache


async def _comment(app: App, post_id: str) -> str:
    added = await app.data(ADD, {"p": post_id, "b": "a comment"}, as_user=OWNER)
    return str(added["addComment"]["comment"]["id"])


async def _scenario(app: App, name: str, member: int) -> tuple[str, dict[str, Any], int]:
    """The mutation ``name`` as the statement counts below run it: (document, variables,
    signed-in user), after whatever it needs was made; ``member`` is the account the user
    mutations change (each run needs one of its own)."""
    post = await create_post(app, publish=True)
    draft = await create_post(app)
    if name == "createPost":
        tags = ["python", "brand-new", "sql"]
        return (
            CREATE,
            {"i": {"title": "T", "content": "C", "tagNames": tags, "publish": True}},
            OWNER,
        )
    if name == "createPosts":
        posts = [{"title": f"T{i}", "tagNames": ["python", "bulk"]} for i in range(3)]
        return (
            "mutation($i: CreatePostsInput!) { createPosts(input: $i) { __typename } }",
            {"i": {"posts": posts}},
            OWNER,
        )
    if name == "updatePost":
        return UPDATE, {"i": {"id": post["id"], "expectedVersion": 1, "title": "New"}}, OWNER
    if name == "publishPost":
        return PUBLISH, {"i": {"id": draft["id"]}}, OWNER
    if name == "unpublishPost":
        return UNPUBLISH, {"i": {"id": post["id"]}}, OWNER
    if name == "deletePost":
        return DELETE_POST, {"i": {"id": post["id"]}}, OWNER
    if name == "setPostTags":
        return SET_TAGS, {"i": {"postId": post["id"], "tagNames": ["python", "x"]}}, OWNER
    if name == "addComment":
        return ADD, {"p": post["id"], "b": "hello"}, OTHER
    if name == "updateComment":
        comment = await _comment(app, post["id"])
        return UPDATE_COMMENT, {"i": {"id": comment, "expectedVersion": 1, "body": "b"}}, OWNER
    if name == "deleteComment":
        comment = await _comment(app, post["id"])
        return DELETE_COMMENT, {"i": {"id": comment}}, OWNER
    if name == "updateUser":
        return UPDATE_USER, {"i": {"id": str(member), "expectedVersion": 1, "name": "N"}}, member
    if name in ("deactivateUser", "deleteUser"):
        return f'mutation {{ {name}(input: {{id: "{member}"}}) {{ __typename }} }}', {}, ADMIN_ID
    raise AssertionError(name)


#: Statements per signed-in mutation, BEGIN and COMMIT included, with the viewer remembered
#: (warm) and not (cold: its row read alone first); before issue 22 (``ef65f1e``) in the
#: comment. A warm viewer's row comes with the row a mutation changes, or, for a mutation that
#: reads none first, is read before COMMIT (createPost: after its payload's ``author`` read,
#: so one more when warm than cold, where the viewer's read serves the payload).
COUNTS = {
    "addComment": (5, 6),  # 7, 7
    "createPost": (9, 8),  # 9, 9
    "createPosts": (7, 7),  # 7, 7 (drafts: no event)
    "updatePost": (5, 6),  # 6, 6
    "publishPost": (5, 6),  # 7, 7
    "unpublishPost": (5, 6),  # 6, 6
    "deletePost": (5, 6),  # 6, 6
    "setPostTags": (9, 10),  # 10, 10
    "updateComment": (4, 5),  # 5, 5 (no event)
    "deleteComment": (4, 5),  # 5, 5 (no event)
    "updateUser": (4, 5),  # 5, 5 (no event)
    "deactivateUser": (4, 5),  # 5, 5 (no event)
    "deleteUser": (6, 7),  # 7, 7
}


@pytest.mark.parametrize("name", list(COUNTS))
async def test_every_mutation_s_statements(postgres: App, name: str) -> None:
    query, variables, user = await _scenario(postgres, name, OTHER)
    postgres.app.state.viewers.forget({user})
    await _warm(postgres, user)
    warm = await _costs(postgres, query, variables, user)
    query, variables, user = await _scenario(postgres, name, ANOTHER)
    postgres.app.state.viewers.forget({user})
    cold = await _costs(postgres, query, variables, user)
    assert (len(warm), len(cold)) == COUNTS[name], (warm, cold)


WRITTEN = re.compile(r"^(?:INSERT INTO|UPDATE) (\w+)")


def _read_back(sent: list[str]) -> list[str]:
    """The SELECTs, within one transaction, of a table after a statement that wrote rows of
    it (an INSERT without ON CONFLICT, an UPDATE): a refresh of what it wrote."""
    written: set[str] = set()
    found = []
    for sql in sent:
        if sql == "BEGIN":
            written.clear()
        elif (match := WRITTEN.match(sql)) and "ON CONFLICT" not in sql:
            written.add(match.group(1))
        elif sql.startswith("SELECT") and any(f"FROM {name} " in sql for name in written):
            found.append(sql)
    return found


def _same_instant(shown: str, stored: Any) -> bool:
    """Whether a payload's timestamp is the stored one (SQLite's column is text in UTC)."""
    if isinstance(stored, str):
        stored = datetime.fromisoformat(stored)
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=UTC)
    return datetime.fromisoformat(shown) == stored


async def test_server_set_values_come_back_with_the_write_and_match_the_row(
    write_app: App,
) -> None:
    """The payload's ids, timestamps and version are the committed row's, and no statement
    read the written rows back after writing them (RETURNING: the mapper's eager defaults)."""
    app = write_app
    with counted(app) as sent:
        created = await app.data(
            CREATE, {"i": {"title": "T", "tagNames": ["python"], "publish": True}}, as_user=OWNER
        )
        post = created["createPost"]["post"]
        updated = await app.data(
            UPDATE, {"i": {"id": post["id"], "expectedVersion": 1, "title": "U"}}, as_user=OWNER
        )
        added = await app.data(ADD, {"p": post["id"], "b": "hello"}, as_user=OTHER)
        comment = added["addComment"]["comment"]
        changed = await app.data(
            UPDATE_COMMENT,
            {"i": {"id": comment["id"], "expectedVersion": 1, "body": "edited"}},
            as_user=OTHER,
        )
        draft = (await app.data(CREATE, {"i": {"title": "D"}}, as_user=OWNER))["createPost"]
        published = await app.data(PUBLISH, {"i": {"id": draft["post"]["id"]}}, as_user=OWNER)
    assert _read_back(sent) == [], sent
    shown = published["publishPost"]["post"]
    [stored_draft] = await table(
        app.engine, "SELECT * FROM posts WHERE id = :i", i=pk(draft["post"]["id"])
    )
    assert shown["version"] == stored_draft["version"] == 2
    assert _same_instant(shown["publishedAt"], stored_draft["published_at"])
    [stored_post] = await table(app.engine, "SELECT * FROM posts WHERE id = :i", i=pk(post["id"]))
    assert post["databaseId"] == str(stored_post["id"])
    assert _same_instant(post["createdAt"], stored_post["created_at"])
    assert _same_instant(post["publishedAt"], stored_post["published_at"])
    after = updated["updatePost"]["post"]
    assert after["version"] == stored_post["version"] == 2
    assert _same_instant(after["updatedAt"], stored_post["updated_at"])
    [stored] = await table(app.engine, "SELECT * FROM comments WHERE id = :i", i=pk(comment["id"]))
    assert comment["databaseId"] == str(stored["id"]) and comment["version"] == 1
    assert _same_instant(comment["createdAt"], stored["created_at"])
    edited = changed["updateComment"]["comment"]
    assert edited["version"] == stored["version"] == 2 and stored["body"] == "edited"
    assert _same_instant(edited["updatedAt"], stored["updated_at"])
    assert comment["author"] == {"name": (await _name(app, OTHER))}


async def _name(app: App, user: int) -> str:
    [row] = await table(app.engine, "SELECT name FROM users WHERE id = :i", i=user)
    return str(row["name"])


async def _stale(app: App, user: int, change: str) -> None:
    """Change ``user``'s row behind the process's back (``change``: a SET clause), wait
    until the cache has heard of it, then make it remember the account as it was, as if the
    notification were still on its way."""
    viewers = app.app.state.viewers
    await _warm(app, user)
    remembered = viewers.get(user)
    async with app.engine.begin() as conn:
        await conn.execute(text(f"UPDATE users SET {change} WHERE id = :id"), {"id": user})
    deadline = time.monotonic() + 5
    while viewers.get(user) is not None:
        assert time.monotonic() < deadline, "the account's notification never arrived"
        await asyncio.sleep(0.01)
    viewers.put(remembered, viewers.generation)
    assert viewers.get(user) == remembered


async def test_a_deactivated_account_remembered_still_cannot_write(postgres: App) -> None:
    post = await create_post(postgres, publish=True)
    before = await _written(postgres)
    await _stale(postgres, OTHER, "is_active = false")
    body = await postgres.gql(ADD, {"p": post["id"], "b": "too late"}, as_user=OTHER)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert body["extensions"]["transaction"] == "rolled_back"
    assert postgres.app.state.viewers.get(OTHER) is None  # forgotten at once
    # Without a row read first (createPost), the check before COMMIT stops it.
    await _stale(postgres, OWNER, "is_active = false")
    body = await postgres.gql(CREATE, {"i": {"title": "too late"}}, as_user=OWNER)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await _written(postgres) == before


async def _written(app: App) -> list[dict[str, Any]]:
    """What a write here could add: the posts, comments and events."""
    return await table(
        app.engine,
        "SELECT (SELECT count(*) FROM posts) AS posts, (SELECT count(*) FROM comments) AS c, "
        "(SELECT count(*) FROM events) AS events",
    )


async def test_a_role_changed_under_a_write_rolls_it_back(postgres: App) -> None:
    """The cache still says admin; the row says member. A write that read its row first
    runs again as the member (another's draft: not found); one that read none is refused
    before COMMIT, retryably."""
    draft = await create_post(postgres, as_user=OTHER)
    await _stale(postgres, ADMIN_ID, "role = 'member'")
    data = await postgres.data(ADD, {"p": draft["id"], "b": "admin?"}, as_user=ADMIN_ID)
    assert data["addComment"]["__typename"] == "NotFound"
    await _stale(postgres, ADMIN_ID, "role = 'admin'")  # back, and remembered as a member
    postgres.app.state.viewers.put(
        Viewer(ADMIN_ID, "member"), postgres.app.state.viewers.generation
    )
    before = await _written(postgres)
    body = await postgres.gql(CREATE, {"i": {"title": "as whom?"}}, as_user=ADMIN_ID)
    assert body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == "TRANSACTION_CONFLICT"
    assert await _written(postgres) == before
    again = await postgres.data(CREATE, {"i": {"title": "as whom?"}}, as_user=ADMIN_ID)
    assert again["createPost"]["__typename"] == "PostPayload"  # the retry reads the row


async def test_a_mutations_session_ends_without_a_task_or_greenlet_once_it_committed(
    write_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mutation's session holds no connection once its transaction has ended (committed,
    or rolled back after a typed error): it is closed at once (``checkout.close_at_once``),
    not through ``close_or_drop``'s shielded greenlet, and its connection is back in the
    pool."""
    from schema import context as context_module

    dropped: list[Any] = []
    close_or_drop = context_module.close_or_drop

    async def recording(session: Any) -> None:
        dropped.append(session)
        await close_or_drop(session)

    monkeypatch.setattr(context_module, "close_or_drop", recording)
    post = (await create_post(write_app, OWNER, publish=True))["id"]
    added = await write_app.data(ADD, {"p": post, "b": "closed at once"}, as_user=OTHER)
    assert added["addComment"]["__typename"] == "CommentPayload"
    missing = base64.b64encode(b"Post:987654").decode()  # read, not found: rolled back
    refused = await write_app.data(ADD, {"p": missing, "b": "nowhere"}, as_user=OTHER)
    assert refused["addComment"]["__typename"] == "NotFound"
    assert dropped == []
    assert write_app.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_outbox_is_written_on_the_transactions_connection_without_a_greenlet(
    postgres: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox's statement runs on the connection the mutation's transaction began on
    (``db.checkout.connection``: known from ``SessionEvents.after_begin``), not on one that
    ``AsyncSession.connection()`` fetches in a greenlet; it commits with the comment."""
    from sqlalchemy.ext.asyncio import AsyncSession

    fetched: list[Any] = []
    connection = AsyncSession.connection

    async def recording(self: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        fetched.append(self)
        return await connection(self, *args, **kwargs)

    monkeypatch.setattr(AsyncSession, "connection", recording)
    post = (await create_post(postgres, OWNER, publish=True))["id"]
    fetched.clear()
    added = await postgres.data(ADD, {"p": post, "b": "on its own connection"}, as_user=OTHER)
    assert added["addComment"]["__typename"] == "CommentPayload"
    assert fetched == []
    comment = int(added["addComment"]["comment"]["databaseId"])
    async with postgres.engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM events WHERE kind = 'comment_added' AND row_id = :c"),
            {"c": comment},
        )
    assert found == 1
