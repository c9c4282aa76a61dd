"""Sign-in sessions (issue 21): refresh token rotation and reuse, signing out of one session
and of all, changing the password, and tokens issued before a password change, on both
databases. The change seen by another server process is in ``test_sessions_live.py``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db import models
from schema.auth.sessions import hash_refresh_token
from schema.auth.tokens import issue_token
from schema.auth.viewer import PASSWORD_CHANGED, SIGNED_OUT
from schema.live.events import ANY_TABLE, changed_tables, rows_changed
from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.live import graphql_body
from tests.truth import count_rows, table

PASSWORD = "inkwell-demo"  # every seeded account's (db.seed)
TOKENS = """token expiresAt refreshToken refreshTokenExpiresAt sessionId viewer { databaseId }"""
LOGIN = f"""mutation($e: String!, $p: String!, $d: String) {{
  login(input: {{email: $e, password: $p, deviceLabel: $d}}) {{ __typename
    ... on AuthPayload {{ {TOKENS} }} ... on MutationError {{ message }} }} }}"""
REFRESH = f"""mutation($r: String!) {{ refreshSession(input: {{refreshToken: $r}}) {{ __typename
  ... on AuthPayload {{ {TOKENS} }} ... on MutationError {{ message }} }} }}"""
SIGN_OUT = """mutation($s: ID) { signOut(input: {sessionId: $s}) { __typename
  ... on SignOutPayload { endedSessions } ... on MutationError { message } } }"""
SIGN_OUT_EVERYWHERE = """mutation($u: ID) { signOutEverywhere(input: {userId: $u}) {
  __typename ... on SignOutPayload { endedSessions } ... on MutationError { message } } }"""
CHANGE = f"""mutation($c: String!, $n: String!) {{
  changePassword(input: {{currentPassword: $c, newPassword: $n}}) {{ __typename
    ... on AuthPayload {{ {TOKENS} }}
    ... on ValidationError {{ fieldErrors {{ field message }} }} ... on MutationError {{ message }}
  }} }}"""
SESSIONS = """{ viewer { databaseId sessions { id deviceLabel createdAt lastUsedAt expiresAt
  current } } }"""
VIEWER = "{ viewer { databaseId } }"
#: Longest a notification may take to reach the app's own listener (usually a millisecond).
DELIVERY_SECONDS = 5.0


async def post(
    app: App, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """The JSON body of ``query``, with ``token`` as the bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = await app.client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return graphql_body(response)


async def email_of_engine(engine: AsyncEngine, user_id: int) -> str:
    """The email of account ``user_id``."""
    rows = await table(engine, "SELECT email FROM users WHERE id = :id", id=user_id)
    return str(rows[0]["email"])


async def email_of(app: App, user_id: int) -> str:
    return await email_of_engine(app.engine, user_id)


async def login(app: App, user_id: int, label: str | None = None) -> dict[str, Any]:
    """A new session of ``user_id``: the ``AuthPayload``."""
    body = await post(app, LOGIN, {"e": await email_of(app, user_id), "p": PASSWORD, "d": label})
    payload: dict[str, Any] = body["data"]["login"]
    assert payload["__typename"] == "AuthPayload", payload
    return payload


async def refused(app: App, token: str) -> str:
    """The message ``token`` is refused with (within a notification's delivery on
    PostgreSQL, where the app may remember the viewer); fails if it keeps working."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        body = await post(app, VIEWER, token=token)
        if body["data"] is None:
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            return str(body["errors"][0]["message"])
        assert time.monotonic() < deadline, "the token still works"
        await asyncio.sleep(0.01)


async def works(app: App, token: str, user_id: int) -> None:
    body = await post(app, VIEWER, token=token)
    assert body["data"] == {"viewer": {"databaseId": str(user_id)}}, body


async def test_login_starts_a_session_the_viewer_lists_with_no_token_in_sight(
    write_app: App,
) -> None:
    first = await login(write_app, OWNER, "  Ann's laptop  ")
    second = await login(write_app, OWNER)
    claims = jwt.decode(first["token"], options={"verify_signature": False})
    assert claims["sid"] == str(
        (await table(write_app.engine, "SELECT min(id) AS id FROM sign_in_sessions"))[0]["id"]
    )
    now = datetime.now(UTC)
    access = datetime.fromisoformat(first["expiresAt"]) - now
    refresh = datetime.fromisoformat(first["refreshTokenExpiresAt"]) - now
    assert timedelta(minutes=14) < access <= timedelta(minutes=15)
    assert timedelta(days=29) < refresh <= timedelta(days=30)
    response = await write_app.client.post(
        "/graphql", json={"query": SESSIONS}, headers={"Authorization": f"Bearer {first['token']}"}
    )
    listed = response.json()["data"]["viewer"]["sessions"]
    assert [(s["id"], s["deviceLabel"], s["current"]) for s in listed] == [
        (second["sessionId"], response.request.headers["user-agent"], False),
        (first["sessionId"], "Ann's laptop", True),
    ]
    # Neither a refresh token nor its hash is ever shown; only the hash is stored.
    stored = await table(write_app.engine, "SELECT token_hash FROM sign_in_sessions")
    assert {row["token_hash"] for row in stored} == {
        hash_refresh_token(first["refreshToken"]),
        hash_refresh_token(second["refreshToken"]),
    }
    for secret in (first["refreshToken"], *(row["token_hash"] for row in stored)):
        assert secret not in response.text
    # Another user's sessions are nobody else's business, an admin's included.
    other = await write_app.data(
        f'{{ user(id: "{OWNER}") {{ sessions {{ id }} }} viewer {{ sessions {{ id }} }} }}',
        as_user=ADMIN_ID,
    )
    assert other == {"user": {"sessions": None}, "viewer": {"sessions": []}}


async def test_a_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    write_app: App,
) -> None:
    signed_in = await login(write_app, OWNER)
    await asyncio.sleep(0.01)
    body = await post(write_app, REFRESH, {"r": signed_in["refreshToken"]})
    refreshed = body["data"]["refreshSession"]
    assert refreshed["__typename"] == "AuthPayload"
    assert refreshed["sessionId"] == signed_in["sessionId"]
    assert refreshed["refreshToken"] != signed_in["refreshToken"]
    await works(write_app, refreshed["token"], OWNER)
    [row] = await table(write_app.engine, "SELECT created_at, last_used_at FROM sign_in_sessions")
    assert str(row["last_used_at"]) > str(row["created_at"])  # moved on by the refresh
    # The first refresh token again: someone else holds the session's tokens. It ends, for
    # every token of it, and the sign-out is kept although the operation rolled back.
    body = await post(write_app, REFRESH, {"r": signed_in["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "RefreshTokenReused"
    assert body["extensions"]["transaction"] == "rolled_back"
    assert await refused(write_app, refreshed["token"]) == SIGNED_OUT
    assert await refused(write_app, signed_in["token"]) == SIGNED_OUT
    body = await post(write_app, REFRESH, {"r": refreshed["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"
    assert (
        await count_rows(
            write_app.engine, "SELECT count(*) FROM sign_in_sessions WHERE revoked_at IS NOT NULL"
        )
        == 1
    )
    for unknown in ("not-a-token", "x" * 43):
        body = await post(write_app, REFRESH, {"r": unknown})
        assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"


async def test_two_refreshes_with_one_token_at_once_one_wins_the_other_is_reuse(
    write_app: App,
) -> None:
    signed_in = await login(write_app, OWNER)
    bodies = await asyncio.gather(
        *(post(write_app, REFRESH, {"r": signed_in["refreshToken"]}) for _ in range(2))
    )
    results = [body["data"]["refreshSession"] for body in bodies]
    assert sorted(r["__typename"] for r in results) == ["AuthPayload", "RefreshTokenReused"]
    [winner] = [r for r in results if r["__typename"] == "AuthPayload"]
    # Nobody can tell the race from a theft: the session ended for both.
    assert await refused(write_app, winner["token"]) == SIGNED_OUT
    body = await post(write_app, REFRESH, {"r": winner["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"


async def test_sign_out_ends_this_session_or_one_named_and_no_other(write_app: App) -> None:
    one, two, three = [await login(write_app, OWNER) for _ in range(3)]
    await works(write_app, one["token"], OWNER)
    body = await post(write_app, SIGN_OUT, token=one["token"])
    assert body["data"]["signOut"] == {"__typename": "SignOutPayload", "endedSessions": 1}
    assert await refused(write_app, one["token"]) == SIGNED_OUT
    body = await post(write_app, REFRESH, {"r": one["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"
    await works(write_app, two["token"], OWNER)
    # Another of one's own sessions, by its ID; never someone else's.
    admin = await login(write_app, ADMIN_ID)
    body = await post(write_app, SIGN_OUT, {"s": admin["sessionId"]}, token=two["token"])
    assert body["data"]["signOut"]["__typename"] == "NotFound"
    await works(write_app, admin["token"], ADMIN_ID)
    body = await post(write_app, SIGN_OUT, {"s": three["sessionId"]}, token=two["token"])
    assert body["data"]["signOut"] == {"__typename": "SignOutPayload", "endedSessions": 1}
    assert await refused(write_app, three["token"]) == SIGNED_OUT
    body = await post(write_app, SESSIONS, token=two["token"])
    assert [s["id"] for s in body["data"]["viewer"]["sessions"]] == [two["sessionId"]]
    # A token of no session (issued before sessions existed) has nothing to sign out.
    legacy = await write_app.data(SIGN_OUT, as_user=OWNER)
    assert legacy["signOut"]["__typename"] == "Unauthenticated"


async def test_sign_out_everywhere_ends_every_session_of_the_viewer(write_app: App) -> None:
    sessions = [await login(write_app, OWNER) for _ in range(2)]
    other = await login(write_app, OTHER)
    body = await post(write_app, SIGN_OUT_EVERYWHERE, token=sessions[0]["token"])
    assert body["data"]["signOutEverywhere"] == {
        "__typename": "SignOutPayload",
        "endedSessions": 2,
    }
    for session in sessions:
        assert await refused(write_app, session["token"]) == SIGNED_OUT
        body = await post(write_app, REFRESH, {"r": session["refreshToken"]})
        assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"
    await works(write_app, other["token"], OTHER)


async def test_admins_sign_out_another_account_and_members_may_not(write_app: App) -> None:
    owner = await login(write_app, OWNER)
    await works(write_app, owner["token"], OWNER)
    member = await write_app.data(SIGN_OUT_EVERYWHERE, {"u": str(OWNER)}, as_user=OTHER)
    assert member["signOutEverywhere"] == {
        "__typename": "Forbidden",
        "message": "You may not sign out another account's sessions.",
    }
    await works(write_app, owner["token"], OWNER)
    admin = await write_app.data(SIGN_OUT_EVERYWHERE, {"u": str(OWNER)}, as_user=ADMIN_ID)
    assert admin["signOutEverywhere"] == {"__typename": "SignOutPayload", "endedSessions": 1}
    assert await refused(write_app, owner["token"]) == SIGNED_OUT
    gone = await write_app.data(SIGN_OUT_EVERYWHERE, {"u": "999999"}, as_user=ADMIN_ID)
    assert gone["signOutEverywhere"]["__typename"] == "NotFound"


async def test_a_changed_password_ends_every_other_session_and_this_one_goes_on(
    write_app: App,
) -> None:
    this, other = await login(write_app, OWNER), await login(write_app, OWNER)
    for token in (this["token"], other["token"]):
        await works(write_app, token, OWNER)  # remembered, where the viewer cache is fed
    wrong = await post(
        write_app, CHANGE, {"c": "not my password", "n": "a new password"}, this["token"]
    )
    assert wrong["data"]["changePassword"] == {
        "__typename": "ValidationError",
        "fieldErrors": [{"field": "currentPassword", "message": "Wrong password."}],
        "message": "Invalid input: currentPassword.",
    }
    weak = await post(write_app, CHANGE, {"c": PASSWORD, "n": "short"}, this["token"])
    assert weak["data"]["changePassword"]["fieldErrors"] == [
        {"field": "newPassword", "message": "Use at least 8 characters."}
    ]
    body = await post(write_app, CHANGE, {"c": PASSWORD, "n": "a new password"}, this["token"])
    changed = body["data"]["changePassword"]
    assert changed["__typename"] == "AuthPayload" and changed["sessionId"] == this["sessionId"]
    assert body["extensions"]["transaction"] == "committed"
    # This session goes on with the new tokens; its old access token is refused.
    await works(write_app, changed["token"], OWNER)
    assert await refused(write_app, this["token"]) == PASSWORD_CHANGED
    # Every other session has ended.
    assert await refused(write_app, other["token"]) == SIGNED_OUT
    body = await post(write_app, REFRESH, {"r": other["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"
    # The new refresh token works; the old password does not.
    body = await post(write_app, REFRESH, {"r": changed["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "AuthPayload"
    email = await email_of(write_app, OWNER)
    old = await post(write_app, LOGIN, {"e": email, "p": PASSWORD})
    assert old["data"]["login"]["__typename"] == "Unauthenticated"
    new = await post(write_app, LOGIN, {"e": email, "p": "a new password"})
    assert new["data"]["login"]["__typename"] == "AuthPayload"


async def test_a_write_checks_the_session_and_the_password_change_as_a_query_does(
    write_app: App,
) -> None:
    """A mutation takes its viewer from the viewer cache too (``schema.writes.viewer_check``):
    the token's session and the password's change are checked there, and a mutation's own
    read of the account remembers the change, so the access token this session had before
    it stays refused, to queries and writes alike, after a write with the new one."""
    this, other = await login(write_app, OWNER), await login(write_app, OWNER)
    body = await post(write_app, CHANGE, {"c": PASSWORD, "n": "a new password"}, this["token"])
    changed = body["data"]["changePassword"]
    write = 'mutation { createPost(input: {title: "after"}) { __typename } }'
    for _ in range(2):  # the first reads the account (and fills the cache), the second not
        body = await post(write_app, write, token=changed["token"])
        assert body["data"] == {"createPost": {"__typename": "PostPayload"}}, body
    assert await refused(write_app, this["token"]) == PASSWORD_CHANGED
    for token, message in ((this["token"], PASSWORD_CHANGED), (other["token"], SIGNED_OUT)):
        body = await post(write_app, write, token=token)
        assert body["data"] is None, body
        assert body["errors"][0]["message"] == message


async def test_tokens_issued_before_the_password_changed_are_refused_to_the_microsecond(
    write_app: App,
) -> None:
    changed_at = datetime.now(UTC) - timedelta(seconds=1)
    settings = write_app.settings
    before = issue_token(settings, OWNER, changed_at - timedelta(microseconds=1)).token
    at = issue_token(settings, OWNER, changed_at).token
    after = issue_token(settings, OWNER).token
    for token in (before, at, after):
        await works(write_app, token, OWNER)  # remembered, where the viewer cache is fed
    async with write_app.engine.begin() as conn:  # as `reset-password` or another process does
        await conn.execute(
            update(models.User)
            .where(models.User.id == OWNER)
            .values(password_changed_at=changed_at)
        )
    # The token issued a microsecond before the change (in the same second) is refused; the
    # ones issued at it (as `changePassword`'s own) and after it still work.
    assert await refused(write_app, before) == PASSWORD_CHANGED
    await works(write_app, at, OWNER)
    await works(write_app, after, OWNER)
    assert (await write_app.data(VIEWER, as_user=OTHER))["viewer"]["databaseId"] == str(OTHER)


def test_a_sign_in_makes_no_cached_response_stale() -> None:
    """Sign-ins and refreshes write the session tables, which no cached (anonymous) response
    reads: their commits' ``ROWS_CHANGED`` events name those tables alone, not every table."""
    event = rows_changed(["sign_in_sessions", "rotated_refresh_tokens"])
    assert not event.id >> ANY_TABLE & 1
    assert changed_tables(event, ["users", "posts", "comments", "tags", "post_tags"]) == set()


async def test_a_sessions_requests_cost_no_statement_once_its_viewer_is_remembered(
    write_app: App,
) -> None:
    """The session and password checks ride on the viewer cache: a signed-in request costs
    the viewer's one statement when it is not remembered, none once it is (PostgreSQL)."""
    signed_in = await login(write_app, OWNER)
    costs = []
    for _ in range(2):
        write_app.statements.clear()
        body = await post(write_app, "{ __typename }", token=signed_in["token"])
        assert body["data"] == {"__typename": "Query"}
        costs.append(write_app.count())
    assert costs == [1, write_app.sign_in]


async def test_an_expired_sessions_refresh_token_is_refused_and_the_session_deleted_later(
    write_app: App,
) -> None:
    expired, kept = await login(write_app, OWNER), await login(write_app, OWNER)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with write_app.engine.begin() as conn:
        table = models.SignInSession
        await conn.execute(
            update(table)
            .where(table.token_hash == hash_refresh_token(expired["refreshToken"]))
            .values(expires_at=past)
        )
    body = await post(write_app, REFRESH, {"r": expired["refreshToken"]})
    assert body["data"]["refreshSession"]["__typename"] == "Unauthenticated"
    await login(write_app, OWNER)  # a sign-in deletes the user's expired sessions
    listed = await post(write_app, SESSIONS, token=kept["token"])
    assert len(listed["data"]["viewer"]["sessions"]) == 2
    assert await count_rows(write_app.engine, "SELECT count(*) FROM sign_in_sessions") == 2


async def test_a_remembered_viewer_signs_out_and_changes_password_in_one_commit(
    write_app: App,
) -> None:
    """A mutation's viewer the cache remembers is confirmed in its transaction just before
    COMMIT; the session or password the operation itself ends must not refuse that commit."""
    for mutation, variables in ((SIGN_OUT, {}), (CHANGE, {"c": PASSWORD, "n": "a new one!"})):
        signed_in = await login(write_app, OWNER, "remembered")
        await works(write_app, signed_in["token"], OWNER)  # remembered (PostgreSQL)
        await works(write_app, signed_in["token"], OWNER)
        body = await post(write_app, mutation, variables, signed_in["token"])
        assert body["extensions"]["transaction"] == "committed", body
        await post(
            write_app, CHANGE, {"c": "a new one!", "n": PASSWORD}, None
        )  # anonymous: refused
        if mutation is CHANGE:  # back to the password every test signs in with
            token = body["data"]["changePassword"]["token"]
            body = await post(write_app, CHANGE, {"c": "a new one!", "n": PASSWORD}, token)
            assert body["extensions"]["transaction"] == "committed", body
