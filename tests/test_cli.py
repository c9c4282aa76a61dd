"""The command line, run as a newcomer would: a real process, a real uvicorn, a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live import SERVER, free_port, live_server, serve_command, wait_healthy


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SERVER), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_serve_migrates_seeds_and_serves_graphiql(tmp_path: Path, clean_env: None) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        assert (tmp_path / "inkwell.db").exists()  # the default: a file in the working directory
        counts = "{ users { totalCount } posts { totalCount } }"
        body = httpx.post(f"{base}/graphql", json={"query": counts}).json()
        assert body["data"]["users"]["totalCount"] == 200
        assert 0 < body["data"]["posts"]["totalCount"] < 2000  # anonymous: published only
        # The demo admin signs in with the documented password, sees drafts too, and the
        # generated development key is kept beside the database.
        login = """mutation { login(input: {email: "admin@example.com", password: "inkwell-demo"})
                   { ... on AuthPayload { token } } }"""
        token = httpx.post(f"{base}/graphql", json={"query": login}).json()["data"]["login"]
        headers = {"Authorization": f"Bearer {token['token']}"}
        body = httpx.post(f"{base}/graphql", json={"query": counts}, headers=headers).json()
        assert body["data"]["posts"]["totalCount"] == 2000
        assert (tmp_path / ".inkwell-jwt-secret").stat().st_mode & 0o077 == 0
        page = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "RecentWriting" in page.text
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_migrate_seed_and_export_schema(tmp_path: Path, clean_env: None) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert run("migrate", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    sizes = [
        "--users",
        "5",
        "--posts-per-user",
        "2",
        "--comments-per-post",
        "1",
        "--tags",
        "3",
        "--tags-per-post",
        "1",
    ]
    seeded = run("seed", *sizes, cwd=tmp_path, DATABASE_URL=url)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 5 users, 10 posts, 10 comments, 3 tags, 10 post tags" in seeded.stdout
    again = run("seed", *sizes, cwd=tmp_path, DATABASE_URL=url)
    assert again.returncode == 1 and "--replace" in again.stderr
    assert run("seed", *sizes, "--replace", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    out = tmp_path / "schema.graphql"
    assert run("export-schema", "--output", str(out), cwd=tmp_path).returncode == 0
    assert "type Query" in out.read_text()


def test_bad_setting_is_a_clear_error(tmp_path: Path, clean_env: None) -> None:
    result = run("migrate", cwd=tmp_path, DB_POOL_SIZE="zero")
    assert result.returncode == 2
    assert "DB_POOL_SIZE: Input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_uvicorn_serves_the_module_level_app(tmp_path: Path, clean_env: None) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'uv.db'}"
    assert run("migrate", cwd=tmp_path, DATABASE_URL=url).returncode == 0
    with live_server(DATABASE_URL=url) as base:
        body = httpx.post(f"{base}/graphql", json={"query": "{ users { totalCount } }"}).json()
        assert body["data"] == {"users": {"totalCount": 0}}


@pytest.mark.parametrize("secret", [None, "changeme"])
def test_production_refuses_to_start_without_a_real_secret(
    tmp_path: Path, clean_env: None, secret: str | None
) -> None:
    env = {"ENVIRONMENT": "production", **({"JWT_SECRET": secret} if secret else {})}
    result = run("serve", cwd=tmp_path, **env)
    assert result.returncode == 2
    assert result.stderr.startswith("inkwell: invalid configuration:")
    assert ("must be set" if secret is None else "placeholder") in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was created: no database, no key file


def test_production_serve_never_loads_the_demo_accounts(tmp_path: Path, clean_env: None) -> None:
    env = {"ENVIRONMENT": "production", "JWT_SECRET": "Zq3-4vP0sL9mN2bX8cV7aQ1wE6rT5yU-kR7"}
    with serve_command(tmp_path, **env) as base:
        assert httpx.get(f"{base}/readyz").status_code == 200  # migrated
        body = httpx.post(f"{base}/graphql", json={"query": "{ users { totalCount } }"}).json()
        assert body["data"] == {"users": {"totalCount": 0}}
