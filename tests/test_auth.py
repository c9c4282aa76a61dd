"""Accounts and auth: register, login, tokens, the viewer, deactivation, secrets."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

import settings as settings_module
from schema.auth.tokens import issue_token
from settings import Settings
from tests.conftest import ADMIN_ID, DEACTIVATED, OTHER, OWNER, App, bearer
from tests.truth import count_rows, digest, table

REGISTER = """mutation($i: RegisterInput!) { register(input: $i) { __typename
  ... on AuthPayload { token expiresAt viewer { id name email role } }
  ... on ValidationError { fieldErrors { field message } }
  ... on EmailTaken { email } ... on MutationError { message } } }"""
LOGIN = """mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
  __typename ... on AuthPayload { token viewer { databaseId email } }
  ... on MutationError { message } } }"""
VIEWER = "{ viewer { databaseId name email } }"


async def test_register_signs_in_and_the_token_names_the_viewer(
    write_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "correct horse battery"
    data = await write_app.data(
        REGISTER, {"i": {"email": " New.Person@Example.COM ", "name": " Ann ", "password": secret}}
    )
    payload = data["register"]
    assert payload["__typename"] == "AuthPayload"
    # Stored normalised; the new user sees their own email in the payload.
    assert payload["viewer"]["email"] == "new.person@example.com"
    assert payload["viewer"]["name"] == "Ann" and payload["viewer"]["role"] == "MEMBER"
    expires = datetime.fromisoformat(payload["expiresAt"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    response = await write_app.client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Authorization": f"Bearer {payload['token']}"},
    )
    assert response.json()["data"]["viewer"]["email"] == "new.person@example.com"
    # The password is stored only as an Argon2id hash, and never logged.
    rows = await table(
        write_app.engine, "SELECT password_hash FROM users WHERE email = 'new.person@example.com'"
    )
    stored = rows[0]["password_hash"]
    assert stored.startswith("$argon2id$") and secret not in stored
    assert secret not in caplog.text
    logged = await write_app.data(LOGIN, {"e": "NEW.person@example.com", "p": secret})
    assert logged["login"]["viewer"]["email"] == "new.person@example.com"


async def test_register_validates_every_field_and_changes_nothing(write_app: App) -> None:
    before = await digest(write_app.engine)
    data = await write_app.data(
        REGISTER, {"i": {"email": "not-an-email", "name": "  ", "password": "short"}}
    )
    payload = data["register"]
    assert payload["__typename"] == "ValidationError"
    assert {e["field"] for e in payload["fieldErrors"]} == {"email", "name", "password"}
    long_name = await write_app.data(
        REGISTER, {"i": {"email": "a@b.co", "name": "x" * 101, "password": "p" * 1001}}
    )
    assert {e["field"] for e in long_name["register"]["fieldErrors"]} == {"name", "password"}
    assert await digest(write_app.engine) == before


async def test_an_email_in_use_is_email_taken_whatever_its_case(write_app: App) -> None:
    data = await write_app.data(
        REGISTER, {"i": {"email": "ADMIN@example.com", "name": "Mallory", "password": "x" * 12}}
    )
    assert data["register"] == {
        "__typename": "EmailTaken",
        "email": "admin@example.com",
        "message": "Another account already uses this email.",
    }
    assert data["register"]["__typename"] == "EmailTaken"
    assert await count_rows(write_app.engine, "SELECT count(*) FROM users") == 6


async def test_login_failures_do_not_tell_which_part_was_wrong(write_app: App) -> None:
    wrong_password = await write_app.data(LOGIN, {"e": "admin@example.com", "p": "nope-nope"})
    unknown_email = await write_app.data(LOGIN, {"e": "nobody@example.com", "p": "inkwell-demo"})
    assert wrong_password == unknown_email
    assert wrong_password["login"] == {
        "__typename": "Unauthenticated",
        "message": "Wrong email or password.",
    }
    ok = await write_app.data(LOGIN, {"e": "admin@example.com", "p": "inkwell-demo"})
    assert ok["login"]["viewer"]["databaseId"] == str(ADMIN_ID)


async def test_deactivated_users_cannot_sign_in_and_their_tokens_stop_working(
    write_app: App,
) -> None:
    email = (await write_app.data(VIEWER, as_user=OWNER))["viewer"]["email"]
    deactivated = await write_app.gql(VIEWER, as_user=DEACTIVATED)
    assert deactivated["data"] is None
    assert deactivated["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # Deactivating an account ends its existing tokens at once.
    headers = bearer(write_app.settings, OWNER)
    result = await write_app.data(
        'mutation { deactivateUser(input: {id: "2"}) { __typename } }', as_user=OWNER
    )
    assert result["deactivateUser"]["__typename"] == "UserPayload"
    response = await write_app.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    body = response.json()
    assert response.status_code == 401 and body["data"] is None
    assert body["errors"][0]["message"] == "The account of this access token is deactivated."
    login = await write_app.data(LOGIN, {"e": email, "p": "inkwell-demo"})
    assert login["login"] == {
        "__typename": "Unauthenticated",
        "message": "This account is deactivated.",
    }


async def test_a_deleted_users_token_stops_working(write_app: App) -> None:
    await write_app.data('mutation { deleteUser(input: {id: "3"}) { __typename } }', as_user=OTHER)
    body = await write_app.gql(VIEWER, as_user=OTHER)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _claims_of(settings: Settings, user_id: int) -> str:
    """The (base64url) payload part of a genuine token for ``user_id``."""
    return issue_token(settings, user_id).token.split(".")[1]


def _forged(settings: Settings, **changes: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": str(OWNER), "iat": now, "exp": now + timedelta(hours=1)}
    claims.update(changes)
    key = str(claims.pop("key", settings.jwt_key()))
    algorithm = str(claims.pop("alg", "HS256"))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("tampered", "The access token is invalid."),
        ("other key", "The access token is invalid."),
        ("expired", "The access token has expired; sign in again."),
        ("alg none", "The access token is invalid."),
        ("no exp", "The access token is invalid."),
        ("non-numeric sub", "The access token is invalid."),
        ("huge sub", "The access token is invalid."),
        ("garbage", "The access token is invalid."),
        ("basic scheme", "The Authorization header must be `Bearer <token>`."),
        ("empty bearer", "The Authorization header must be `Bearer <token>`."),
    ],
)
async def test_bad_credentials_fail_the_request_cleanly(
    write_app: App, case: str, message: str
) -> None:
    settings = write_app.settings
    good = issue_token(settings, OWNER).token
    header, _, signature = good.split(".")
    tokens = {
        # Another user's claims under this token's signature: only the signature check
        # can tell (the payload is well-formed JSON).
        "tampered": f"{header}.{_claims_of(settings, ADMIN_ID)}.{signature}",
        "other key": _forged(settings, key="another-key-" + "x" * 40),
        "expired": _forged(
            settings,
            iat=datetime.now(UTC) - timedelta(days=2),
            exp=datetime.now(UTC) - timedelta(days=1),
        ),
        "alg none": _forged(settings, alg="none", key=""),
        "no exp": _forged(settings, exp=None),
        "non-numeric sub": _forged(settings, sub="admin"),
        "huge sub": _forged(settings, sub=str(2**63)),
        "garbage": "not.a.jwt",
    }
    authorization = {
        "basic scheme": "Basic YWRtaW46aW5rd2VsbC1kZW1v",
        "empty bearer": "Bearer ",
    }.get(case) or f"Bearer {tokens[case]}"
    before = await digest(write_app.engine)
    response = await write_app.client.post(
        "/graphql",
        json={"query": 'mutation { deleteUser(input: {id: "2"}) { __typename } }'},
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert body["errors"] == [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]
    assert await digest(write_app.engine) == before


async def test_viewer_is_null_without_a_token(write_app: App) -> None:
    assert await write_app.data(VIEWER) == {"viewer": None}


async def test_email_is_visible_only_to_its_owner_and_admins(write_app: App) -> None:
    query = """query($e: String!) { user(id: "2") { email }
               userByEmail(email: $e) { databaseId }
               users(first: 10, filter: {search: "example.com"}) { totalCount } }"""
    email = (await write_app.data(VIEWER, as_user=OWNER))["viewer"]["email"]
    seen = {}
    for who in (None, OTHER, OWNER, ADMIN_ID):
        seen[who] = await write_app.data(query, {"e": email.upper()}, as_user=who)
    hidden = {"user": {"email": None}, "userByEmail": None, "users": {"totalCount": 0}}
    assert seen[None] == seen[OTHER] == hidden
    assert seen[OWNER]["user"]["email"] == email
    assert seen[OWNER]["userByEmail"] == {"databaseId": str(OWNER)}
    assert seen[ADMIN_ID]["user"]["email"] == email
    assert seen[ADMIN_ID]["userByEmail"] == {"databaseId": str(OWNER)}
    assert seen[ADMIN_ID]["users"]["totalCount"] == 6  # only admins search emails


def test_production_refuses_a_missing_or_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match=r"jwt_secret\n.*must be set in production"):
        Settings(environment="production")
    for placeholder in (
        "changeme",
        "too-short-but-random-9f8e",
        "change-me-to-a-long-random-secret-value",  # long enough, but copied from a template
        "a" * 64,
        " ",  # empty once trimmed: as if unset
    ):
        with pytest.raises(ValidationError, match=r"placeholder|must be set"):
            Settings(environment="production", jwt_secret=placeholder)
    strong = "k" * 8 + "Zq3-4vP0sL9mN2bX8cV7aQ1wE6rT5yU"
    assert Settings(environment="production", jwt_secret=strong).jwt_key() == strong


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    first = Settings(jwt_secret_file=path)
    token = issue_token(first, OWNER).token
    assert path.stat().st_mode & 0o777 == 0o600
    settings_module._development_key.cache_clear()  # as after a restart
    again = Settings(jwt_secret_file=path)
    assert again.jwt_key() == first.jwt_key() and len(again.jwt_key()) >= 48
    assert jwt.decode(token, again.jwt_key(), algorithms=["HS256"])["sub"] == str(OWNER)


async def test_the_seeded_hash_needs_no_rehash_and_is_read_only_to_sign_in(
    write_app: App,
) -> None:
    write_app.statements.clear()
    await write_app.data(LOGIN, {"e": "admin@example.com", "p": "inkwell-demo"})
    assert not [s for s in write_app.statements if s.lstrip().upper().startswith("UPDATE")]
    write_app.statements.clear()
    await write_app.data(
        "{ viewer { name } posts(first: 3) { nodes { author { name } } } }", as_user=OWNER
    )
    assert write_app.statements and not [s for s in write_app.statements if "password_hash" in s]


def test_an_empty_or_truncated_key_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("\n")
    key = Settings(jwt_secret_file=path, jwt_secret="").jwt_key()
    assert len(key) >= 48 and path.read_text().strip() == key


def test_a_remembered_token_still_expires_and_is_verified_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Verified tokens are remembered (``tokens.VERIFIED_TOKENS``), but expiry is checked on
    every use, and a token is remembered only under the key that verified it."""
    from schema.auth import tokens
    from schema.errors import AuthenticationFailed

    settings = Settings(jwt_secret="k" * 40, jwt_ttl_seconds=60)
    token = issue_token(settings, 7).token
    assert tokens.token_claims(settings, token).user_id == 7
    assert tokens.token_claims(settings, token).user_id == 7  # remembered
    other = Settings(jwt_secret="o" * 40, jwt_ttl_seconds=60)
    with pytest.raises(AuthenticationFailed, match="invalid"):
        tokens.token_claims(other, token)
    later = tokens.time.time() + 61
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(AuthenticationFailed, match="expired"):
        tokens.token_claims(settings, token)
