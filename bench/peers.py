"""Inkwell beside PostGraphile, strawberry-sqlalchemy-mapper and the Python floor.

Runs the shared peer harness (``../shared/peers/run.py``; its README says how it measures)
with Inkwell as the server under test, over the harness's own database (``bench``, seeded by
its ``seed.py``), one uvicorn worker pinned to CPU 0 like every peer (uvloop, httptools, no
access log). Inkwell's queries are ``bench/peers_queries.json``; each request is signed in as
an admin of that database, because the harness checks every row (drafts included) and every
email, which Inkwell shows only to admins and to their owners. The harness's database is not
migrated by Inkwell, so this installs the pieces of Inkwell's schema the server relies on
there: migration 0002's trigger announcing account changes, which lets each process remember
its signed-in viewers (``schema.auth.viewer_cache``) instead of reading the row per request,
migration 0003's event outbox (``events``), which every write that announces an event
(W4's ``addComment``) inserts into, and migration 0005's sessions (``sign_in_sessions``,
``rotated_refresh_tokens``, ``users.password_changed_at``, which the viewer's lookup reads,
and the triggers announcing their changes). W4 (a write, run only when ``--workloads``
names it) is signed in as the harness's member (``W4_MEMBER_SQL``: the first active
member), as the harness asks of a server with authentication.

    python bench/peers.py [harness flags…]      # e.g. --rounds 2 --duration 10

Needs wrk, PostgreSQL with pg_stat_statements (the harness's ``enable_pgss.sh``), Node (the
harness installs PostGraphile 5 on first use). Writes the harness's results folder.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "peers"
QUERIES = Path(__file__).resolve().parent / "peers_queries.json"
DSN = "postgres://postgres@127.0.0.1:5432/bench"
#: A development-only key: the token it signs is for this benchmark's database alone.
SECRET = "inkwell-peer-benchmark-key-0f3a9c1e7b5d"
#: The server's environment and uvicorn's flags after ``server:app`` (also ``instructions.py``
#: and ``ab.py``, so every benchmark measures the same server).
ENVIRONMENT = {
    "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/bench",
    "JWT_SECRET": SECRET,
    "SQL_STATS": "false",
    "LOG_LEVEL": "warning",
}
UVICORN_FLAGS = (
    "--workers", "1", "--loop", "uvloop", "--http", "httptools",
    "--no-access-log", "--log-level", "warning",
)  # fmt: skip


#: The migrations whose triggers the viewer cache needs (see the module's docstring), in order.
TRIGGER_MIGRATIONS = (
    ROOT / "db/migrations/versions/2026_12_01_1400-0002_account_change_notify.py",
    ROOT / "db/migrations/versions/2026_12_04_2010-0005_sign_in_sessions.py",
)


def _trigger_statements() -> tuple[str, ...]:
    statements: list[str] = []
    for path in TRIGGER_MIGRATIONS:
        spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
        assert spec is not None and spec.loader is not None
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        statements.extend(migration.UPGRADE)
    return tuple(statements)


#: The harness's W4 writer: the first active member (its ``workloads.W4_MEMBER_SQL``).
MEMBER_SQL = "SELECT min(id) FROM users WHERE role = 'member' AND is_active"


async def _prepare() -> tuple[int, int]:
    """Install the account and session triggers, the event outbox and the session tables;
    returns the ids of an admin of the harness's database and of its W4 member."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.models import OutboxEvent, RotatedRefreshToken, SignInSession

    engine = create_async_engine(ENVIRONMENT["DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("ALTER TABLE users ADD COLUMN IF NOT EXISTS password_changed_at timestamptz")
            )
            for model in (OutboxEvent, SignInSession, RotatedRefreshToken):
                await conn.run_sync(model.__table__.create, checkfirst=True)
    finally:
        await engine.dispose()
    connection = await asyncpg.connect(DSN)
    try:
        async with connection.transaction():
            for statement in _trigger_statements():
                await connection.execute(statement)
        found = await connection.fetchval("SELECT min(id) FROM users WHERE role = 'admin'")
        member = await connection.fetchval(MEMBER_SQL)
    finally:
        await connection.close()
    if found is None or member is None:
        raise SystemExit(f"no admin or member in {DSN}: seed it with {HARNESS}/seed.py")
    return int(found), int(member)


def main(argv: list[str]) -> int:
    """Write the signed-in query set, then run the harness; returns its exit code."""
    sys.path.insert(0, str(ROOT))
    from schema.auth.tokens import issue_token
    from settings import Settings

    settings = Settings(jwt_secret=SECRET, jwt_ttl_seconds=24 * 3600)
    admin, member = asyncio.run(_prepare())
    tokens = {"W4": issue_token(settings, member).token}
    queries = json.loads(QUERIES.read_text())
    for workload, spec in queries.items():
        token = tokens.get(workload) or issue_token(settings, admin).token
        spec["headers"] = {"Authorization": f"Bearer {token}"}
    signed = Path(tempfile.mkdtemp(prefix="inkwell-peers-")) / "queries.json"
    signed.write_text(json.dumps(queries, indent=2))
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in ENVIRONMENT.items())
    server = (
        f"cd {shlex.quote(str(ROOT))} && {exports} exec {shlex.quote(sys.executable)} -m uvicorn "
        "server:app --host 127.0.0.1 --port {port} " + shlex.join(UVICORN_FLAGS)
    )
    command = [
        "python3",
        str(HARNESS / "run.py"),
        "--servers",
        "ssm,postgraphile,floor",
        "--sut",
        server,
        "--sut-queries",
        str(signed),
        "--sut-name",
        "inkwell",
        *argv,
    ]
    return subprocess.run(command, cwd=HARNESS, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
