"""Configuration as the command line meets it: each invalid setting one line naming its
variable and exit 2, for every command; ``--help`` whatever the environment; the database
URL forms other tools hand out; a warning for a misspelt variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.configuration import misspelt
from settings import Settings
from tests.test_cli import run

#: One misconfiguration each, with the variable its one line must name.
BROKEN = [
    ({"PORT": "abc"}, "PORT"),
    ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
    ({"DATABASE_URL": "mysql://root@localhost/inkwell"}, "DATABASE_URL"),
    ({"DATABASE_URL": "inkwell.db"}, "DATABASE_URL"),
    ({"CORS_ALLOWED_ORIGINS": "[https://app.example.com"}, "CORS_ALLOWED_ORIGINS"),
    ({"CORS_ALLOWED_ORIGINS": "app.example.com/path"}, "CORS_ALLOWED_ORIGINS"),
    ({"ENVIRONMENT": "production"}, "JWT_SECRET"),
    (
        {"ENVIRONMENT": "production", "JWT_SECRET": "change-me-please-change-me-please"},
        "JWT_SECRET",
    ),
    ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
]
COMMANDS = [
    ["serve"],
    ["migrate"],
    ["seed"],
    ["export-schema"],
    ["create-user", "--email", "a@b.co", "--name", "A"],
]


@pytest.mark.parametrize(("env", "variable"), BROKEN)
def test_each_invalid_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, clean_env: None, env: dict[str, str], variable: str
) -> None:
    for command in COMMANDS:
        result = run(*command, cwd=tmp_path, **env)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.splitlines()
        assert lines[0] == "inkwell: invalid configuration:", lines
        assert len(lines) == 2 and lines[1].startswith(f"  {variable}: "), lines
        assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was created
    # --help reads no setting.
    helped = run("--help", cwd=tmp_path, **env)
    assert helped.returncode == 0 and "create-user" in helped.stdout and not helped.stderr


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://u:p@db.example.com:5432/ink",
            "postgresql+asyncpg://u:p@db.example.com:5432/ink",
        ),
        ("postgres://u@db/ink?sslmode=require", "postgresql+asyncpg://u@db/ink?sslmode=require"),
        ("postgresql+asyncpg://u@db/ink", "postgresql+asyncpg://u@db/ink"),
        ("sqlite:///./inkwell.db", "sqlite+aiosqlite:///./inkwell.db"),
    ],
)
def test_database_urls_as_other_tools_write_them_use_the_async_drivers(
    given: str, used: str
) -> None:
    assert Settings(database_url=given).database_url == used


def test_a_psql_style_url_migrates_a_real_database(
    tmp_path: Path, clean_env: None, fresh_db_url: str
) -> None:
    plain = fresh_db_url.replace("+asyncpg", "").replace("+aiosqlite", "")
    result = run("migrate", cwd=tmp_path, DATABASE_URL=plain)
    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stdout


def test_a_misspelt_variable_is_warned_about_and_ignored(tmp_path: Path, clean_env: None) -> None:
    result = run("migrate", cwd=tmp_path, ENVIROMENT="production", JWT_SECRT="x")
    assert result.returncode == 0  # still development: the misspelt variable is not read
    assert "ENVIROMENT is not a setting (ignored): did you mean ENVIRONMENT?" in result.stderr
    assert "JWT_SECRT is not a setting (ignored): did you mean JWT_SECRET?" in result.stderr


def test_only_near_misses_of_a_setting_count_as_misspelt() -> None:
    environ = {
        "HOSTNAME": "x",
        "PATH": "x",
        "HOME": "x",
        "TEST_DATABASE_URL": "x",
        "PORT": "1",
        "PYTHONPATH": "x",
        "DATABSE_URL": "x",
        "LOG_LEVL": "x",
        "OTEL_SERVICE_NAME": "x",
    }
    assert sorted(misspelt(environ)) == [("DATABSE_URL", "DATABASE_URL"), ("LOG_LEVL", "LOG_LEVEL")]
