"""Safe administration from the command line: ``seed`` refuses a production database, and
an operator creates the first admin and resets a password, typed in or piped, never passed
as an argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import text

from db.engine import create_engine
from db.seed import DEMO_PASSWORD
from settings import Settings
from tests.conftest import TEST_SECRET, running_app
from tests.live import SERVER
from tests.test_cli import run

PRODUCTION = {"ENVIRONMENT": "production", "JWT_SECRET": "Zq3-4vP0sL9mN2bX8cV7aQ1wE6rT5yU-kR7"}
SMALL = ("--users", "3", "--posts-per-user", "1", "--comments-per-post", "1", "--tags", "2",
         "--tags-per-post", "1")  # fmt: skip
LOGIN = """mutation($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename ... on AuthPayload { viewer { role } }
  }
}"""


def piped(*args: str, password: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``server.py`` with ``password`` as the first line of its standard input."""
    return subprocess.run(
        [sys.executable, str(SERVER), *args, "--password-stdin"],
        cwd=cwd,
        input=password + "\n",
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


async def login(url: str, email: str, password: str) -> dict[str, object]:
    settings = Settings(database_url=url, jwt_secret=TEST_SECRET)
    async with running_app(settings) as api:
        variables = {"email": email, "password": password}
        body = (
            await api.client.post("/graphql", json={"query": LOGIN, "variables": variables})
        ).json()
        result: dict[str, object] = body["data"]["login"]
        return result


async def password_hashes(url: str) -> list[str]:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text("SELECT password_hash FROM users"))).scalars())
    finally:
        await engine.dispose()


async def test_seed_refuses_production_and_never_sets_the_demo_password_there(
    tmp_path: Path, clean_env: None, fresh_db_url: str
) -> None:
    env = {**PRODUCTION, "DATABASE_URL": fresh_db_url}
    assert run("migrate", cwd=tmp_path, **env).returncode == 0
    impossible = run("seed", *SMALL, "--tags-per-post", "3", cwd=tmp_path, **env)
    assert impossible.returncode == 2
    assert impossible.stderr == "inkwell: seed: tags_per_post must not exceed tags\n"
    refused = run("seed", *SMALL, cwd=tmp_path, **env)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "seed refuses a production database" in refused.stderr
    assert await password_hashes(fresh_db_url) == []  # nothing loaded
    forced = run("seed", *SMALL, "--allow-production", cwd=tmp_path, **env)
    assert forced.returncode == 0, forced.stderr
    hashes = await password_hashes(fresh_db_url)
    assert len(hashes) == 3
    for stored in hashes:
        with pytest.raises(VerificationError):
            PasswordHasher().verify(stored, DEMO_PASSWORD)


async def test_create_the_first_admin_and_reset_a_password(
    tmp_path: Path, clean_env: None, fresh_db_url: str
) -> None:
    env = {**PRODUCTION, "DATABASE_URL": fresh_db_url}
    assert run("migrate", cwd=tmp_path, **env).returncode == 0
    created = piped(
        "create-user", "--email", " Root@Example.COM ", "--name", "Root", "--admin",
        password="correct horse battery", cwd=tmp_path, **env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin root@example.com (id ")
    assert await login(fresh_db_url, "root@example.com", "correct horse battery") == {
        "__typename": "AuthPayload",
        "viewer": {"role": "ADMIN"},
    }
    again = piped("create-user", "--email", "root@example.com", "--name", "Again",
                  password="another long one", cwd=tmp_path, **env)  # fmt: skip
    assert again.returncode == 1
    assert again.stderr == "inkwell: an account with the email root@example.com exists already\n"
    short = piped("create-user", "--email", "m@example.com", "--name", "M",
                  password="short", cwd=tmp_path, **env)  # fmt: skip
    assert short.returncode == 1 and "password: Use at least 8 characters." in short.stderr
    # Reset: the new password signs in, the old one no longer does.
    reset = piped("reset-password", "--email", "ROOT@example.com", password="a brand new secret",
                  cwd=tmp_path, **env)  # fmt: skip
    assert reset.returncode == 0 and reset.stdout == (
        "set a new password for root@example.com; sessions signed out: 1\n"
    )
    assert (await login(fresh_db_url, "root@example.com", "a brand new secret"))["__typename"] == (
        "AuthPayload"
    )
    assert (await login(fresh_db_url, "root@example.com", "correct horse battery"))[
        "__typename"
    ] != "AuthPayload"
    unknown = piped("reset-password", "--email", "nobody@example.com", password="whatever-long",
                    cwd=tmp_path, **env)  # fmt: skip
    assert (
        unknown.returncode == 1 and "no account has the email nobody@example.com" in unknown.stderr
    )


def test_a_password_is_never_an_argument(tmp_path: Path, clean_env: None) -> None:
    result = run("create-user", "--email", "a@b.co", "--name", "A", "--password", "secret123",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
