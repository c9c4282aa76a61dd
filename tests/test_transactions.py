"""One transaction per mutation operation: all fields commit together or nothing is kept."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import OWNER, App
from tests.databases import BACKENDS
from tests.test_mutations import create_post
from tests.truth import count_rows, digest

TWO_FIELDS = """mutation($id: ID!, $v: Int!) {
  first: createPost(input: {title: "kept?", tagNames: ["atomic"]}) {
    __typename ... on PostPayload { post { id } } ... on MutationError { message } }
  second: updatePost(input: {id: $id, expectedVersion: $v, title: "changed"}) {
    __typename ... on VersionConflict { currentVersion } }
  third: deletePost(input: {id: $id}) { __typename ...Why } }
fragment Why on RolledBack { message }"""


async def test_a_typed_error_in_a_later_field_rolls_back_the_earlier_ones(write_app: App) -> None:
    post = await create_post(write_app)
    before = await digest(write_app.engine)
    body = await write_app.gql(TWO_FIELDS, {"id": post["id"], "v": 99}, as_user=OWNER)
    data = body["data"]
    # "first" ran, but its post was not kept: its payload is withdrawn; "third" came after
    # the failure and did not run. Both are typed results, not errors, so a client that
    # rejects any response with errors (Apollo's default errorPolicy) still reads "second".
    assert "errors" not in body
    assert data["second"] == {"__typename": "VersionConflict", "currentVersion": 1}
    assert data["first"]["__typename"] == data["third"]["__typename"] == "RolledBack"
    assert data["first"]["message"].startswith("Rolled back:")
    assert data["third"]["message"].startswith("Not run:")
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await digest(write_app.engine) == before
    assert (
        await count_rows(write_app.engine, "SELECT count(*) FROM tags WHERE name = 'atomic'") == 0
    )


async def test_a_raised_error_rolls_back_the_whole_operation(write_app: App) -> None:
    before = await digest(write_app.engine)
    body = await write_app.gql(
        """mutation { createPost(input: {title: "doomed"}) {
             ... on PostPayload { post { comments(first: -1) { totalCount } } } } }""",
        as_user=OWNER,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await digest(write_app.engine) == before


async def test_every_successful_field_commits_together(write_app: App) -> None:
    post = await create_post(write_app)
    body = await write_app.gql(
        TWO_FIELDS.replace("third: deletePost", "third: publishPost"),
        {"id": post["id"], "v": 1},
        as_user=OWNER,
    )
    assert body["extensions"]["transaction"] == "committed"
    assert (
        await count_rows(write_app.engine, "SELECT count(*) FROM posts WHERE title = 'kept?'") == 1
    )
    assert (
        await count_rows(
            write_app.engine, "SELECT count(*) FROM posts WHERE title = 'changed' AND version = 3"
        )
        == 1
    )


async def test_queries_report_no_transaction(write_app: App) -> None:
    body = await write_app.gql("{ viewer { id } }", as_user=OWNER)
    assert "transaction" not in body["extensions"]


async def test_a_failed_commit_is_masked_logged_and_keeps_nothing(
    write_app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OSError("disk full (injected)")

    monkeypatch.setattr(AsyncSession, "commit", failing_commit)
    before = await digest(write_app.engine)
    body = await write_app.gql(
        'mutation { createPost(input: {title: "never"}) { __typename } }', as_user=OWNER
    )
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "disk full" not in str(body)
    assert body["extensions"]["transaction"] == "rolled_back"
    logged = [r for r in caplog.records if error["extensions"]["errorId"] in r.getMessage()]
    assert logged and "disk full (injected)" in logged[0].exc_text  # type: ignore[operator]
    monkeypatch.undo()
    assert await digest(write_app.engine) == before


postgres_only = pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs PostgreSQL")


async def _install_failure(app: App, when: str, sqlstate: str) -> None:
    """A PostgreSQL trigger failing any post titled 'explode' with ``sqlstate``, at the
    statement (``when="immediate"``) or at COMMIT (a deferred constraint trigger)."""
    timing = "DEFERRABLE INITIALLY DEFERRED" if when == "commit" else "NOT DEFERRABLE"
    async with app.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.title = 'explode' THEN RAISE EXCEPTION 'injected failure' "
                f"USING ERRCODE = '{sqlstate}'; END IF; RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER explode AFTER INSERT OR UPDATE ON posts {timing} "
                "FOR EACH ROW EXECUTE FUNCTION explode()"
            )
        )


@postgres_only
@pytest.mark.parametrize(
    ("when", "sqlstate", "code"),
    [
        ("commit", "40001", "TRANSACTION_CONFLICT"),  # serialization failure at COMMIT
        ("immediate", "40P01", "TRANSACTION_CONFLICT"),  # deadlock during the statement
        ("commit", "23514", "INTERNAL_SERVER_ERROR"),  # anything else: masked
    ],
)
async def test_database_aborts_become_clean_errors(
    write_app: App, backend: str, when: str, sqlstate: str, code: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL triggers")
    await _install_failure(write_app, when, sqlstate)
    post = await create_post(write_app)
    before = await digest(write_app.engine)
    body = await write_app.gql(
        """mutation($id: ID!) { a: createPost(input: {title: "fine"}) { __typename }
           b: updatePost(input: {id: $id, expectedVersion: 1, title: "explode"}) {
             __typename } }""",
        {"id": post["id"]},
        as_user=OWNER,
    )
    errors: list[dict[str, Any]] = body["errors"]
    if when == "immediate":
        # Failed in field b: field a's payload is withdrawn.
        assert body["data"] == {"a": {"__typename": "RolledBack"}, "b": None}
    else:
        assert body["data"] is None  # the commit failed: nothing was kept
    assert [e["extensions"]["code"] for e in errors] == [code]
    if code == "TRANSACTION_CONFLICT":
        assert errors[0]["extensions"]["retryable"] is True
        assert errors[0]["message"].endswith("retry it.")
    assert "injected" not in str(body)
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await digest(write_app.engine) == before


async def test_client_errors_are_not_logged_as_server_errors(
    write_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await write_app.gql('mutation { createPost(input: {title: ""}) { __typename } }', as_user=OWNER)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_rolled_back_operation_withdraws_earlier_payloads(write_app: App) -> None:
    """The token of a registration that was rolled back must not reach the client: it would
    name an account that does not exist (and, on SQLite, the id the next account gets)."""
    body = await write_app.gql(
        """mutation {
          register(input: {email: "ghost@example.com", name: "Ghost", password: "long enough"}) {
            ... on AuthPayload { token viewer { databaseId } } }
          login(input: {email: "admin@example.com", password: "wrong password"}) {
            __typename ... on MutationError { message } } }"""
    )
    # The token is gone; "register" selected nothing of RolledBack, so it reads as {}.
    assert body["data"] == {
        "register": {},
        "login": {"__typename": "Unauthenticated", "message": "Wrong email or password."},
    }
    assert "errors" not in body
    sql = "SELECT count(*) FROM users WHERE email = 'ghost@example.com'"
    assert await count_rows(write_app.engine, sql) == 0


async def test_a_withdrawn_field_reads_as_its_own_selection_of_rolled_back(
    write_app: App,
) -> None:
    """Aliases, fragments on MutationError or RolledBack, and @skip/@include (literal or by a
    variable) apply to the RolledBack a withdrawn field becomes, as they would had it
    resolved to one; fragments on other types do not."""
    body = await write_app.gql(
        """mutation($no: Boolean!) {
          a: createPost(input: {title: "withdrawn"}) {
            kind: __typename
            ... on PostPayload { post { id } }
            ...on MutationError { why: message }
            ... @include(if: $no) { again: __typename }
            ... on RolledBack @skip(if: true) { skipped: message }
            ...Ok }
          b: createPost(input: {title: ""}) { __typename } }
        fragment Ok on PostPayload { post { title } }""",
        {"no": False},
        as_user=OWNER,
    )
    assert body["data"]["b"] == {"__typename": "ValidationError"}
    assert body["data"]["a"] == {
        "kind": "RolledBack",
        "why": "Rolled back: another mutation in this operation failed, so this change was "
        "not kept.",
    }


async def test_an_error_deep_in_a_payload_stops_the_later_fields(write_app: App) -> None:
    before = await digest(write_app.engine)
    body = await write_app.gql(
        """mutation {
          a: createPost(input: {title: "first"}) {
            ... on PostPayload { post { title comments(first: -1) { totalCount } } } }
          b: createPost(input: {title: "second"}) { __typename } }""",
        as_user=OWNER,
    )
    assert body["data"] == {"a": None, "b": {"__typename": "RolledBack"}}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await digest(write_app.engine) == before


async def test_the_rest_of_an_operation_runs_as_the_account_now_is(write_app: App) -> None:
    body = await write_app.gql(
        """mutation {
          deleteUser(input: {id: "2"}) { __typename }
          createPost(input: {title: "posthumous"}) { __typename } }""",
        as_user=OWNER,
    )
    assert body["data"]["createPost"] == {"__typename": "Unauthenticated"}
    # The typed error rolled the whole operation back: the account is still there.
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await count_rows(write_app.engine, "SELECT count(*) FROM users WHERE id = 2") == 1
