"""Sign-in sessions with rotating refresh tokens, and when each password last changed.

``sign_in_sessions``: one row per signed-in device (its current refresh token's SHA-256, its
label, last use, expiry, revocation); ``rotated_refresh_tokens``: the hashes of the refresh
tokens each session has exchanged, so a reused one is recognised; ``users.password_changed_at``.

PostgreSQL: account changes are announced for these too (``schema.auth.viewer_cache``), on the
channel of migration 0002: the account trigger now also fires for ``password_changed_at``,
and a session's revocation or deletion announces its user's id (a TRUNCATE, ``'*'``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of db.types, so this revision means the same thing forever.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMPTZ = sa.DateTime(timezone=True)
SQLITE_UTC_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"

#: Frozen here; the names are ``schema.auth.viewer_cache``'s. ``bench/peers.py`` runs these on
#: the peer harness's database, which Alembic does not manage (after 0002's).
UPGRADE = (
    "DROP TRIGGER IF EXISTS inkwell_account_changes ON users",
    """
    CREATE TRIGGER inkwell_account_changes
    AFTER UPDATE OF id, role, is_active, password_changed_at OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION inkwell_notify_account_change()
    """,
    """
    CREATE OR REPLACE FUNCTION inkwell_notify_session_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('inkwell_accounts', '*');
        ELSE
            PERFORM pg_notify('inkwell_accounts', OLD.user_id::text);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS inkwell_session_changes ON sign_in_sessions",
    """
    CREATE TRIGGER inkwell_session_changes
    AFTER UPDATE OF user_id, revoked_at OR DELETE ON sign_in_sessions
    FOR EACH ROW EXECUTE FUNCTION inkwell_notify_session_change()
    """,
    "DROP TRIGGER IF EXISTS inkwell_sessions_truncated ON sign_in_sessions",
    """
    CREATE TRIGGER inkwell_sessions_truncated
    AFTER TRUNCATE ON sign_in_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell_notify_session_change()
    """,
)
DOWNGRADE = (
    "DROP TRIGGER IF EXISTS inkwell_sessions_truncated ON sign_in_sessions",
    "DROP TRIGGER IF EXISTS inkwell_session_changes ON sign_in_sessions",
    "DROP FUNCTION IF EXISTS inkwell_notify_session_change()",
    "DROP TRIGGER IF EXISTS inkwell_account_changes ON users",
    """
    CREATE TRIGGER inkwell_account_changes
    AFTER UPDATE OF id, role, is_active OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION inkwell_notify_account_change()
    """,
)


def upgrade() -> None:
    is_sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("users", sa.Column("password_changed_at", TIMESTAMPTZ, nullable=True))
    op.create_table(
        "sign_in_sessions",
        sa.Column("id", BIGINT_PK, sa.Identity(), primary_key=True),
        sa.Column(
            "user_id",
            BIGINT_PK,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("device_label", sa.String(200), nullable=True),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
            server_default=sa.text(SQLITE_UTC_NOW if is_sqlite else "now()"),
        ),
        sa.Column("last_used_at", TIMESTAMPTZ, nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("revoked_at", TIMESTAMPTZ, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_sign_in_sessions_token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_sign_in_sessions_user_id", "sign_in_sessions", ["user_id"])
    op.create_table(
        "rotated_refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "session_id",
            BIGINT_PK,
            sa.ForeignKey("sign_in_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rotated_at", TIMESTAMPTZ, nullable=False),
    )
    op.create_index(
        "ix_rotated_refresh_tokens_session_id", "rotated_refresh_tokens", ["session_id"]
    )
    if not is_sqlite:
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for statement in DOWNGRADE:
            op.execute(statement)
    op.drop_index("ix_rotated_refresh_tokens_session_id", table_name="rotated_refresh_tokens")
    op.drop_table("rotated_refresh_tokens")
    op.drop_index("ix_sign_in_sessions_user_id", table_name="sign_in_sessions")
    op.drop_table("sign_in_sessions")
    op.drop_column("users", "password_changed_at")
