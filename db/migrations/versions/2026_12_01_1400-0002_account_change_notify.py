"""Account changes are announced: NOTIFY inkwell_accounts for each change of a user's id,
role or status and each delete (the user's id, old and new), and for a TRUNCATE ('*').

Each server process remembers the viewers it has read and forgets one when this arrives
(``schema.auth.viewer_cache``); a trigger reports the change whoever makes it. PostgreSQL
only: SQLite has no NOTIFY, and there every request reads its viewer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Frozen here, so this revision means the same thing forever; the names are
#: ``schema.auth.viewer_cache.CHANNEL`` and ``TRIGGER``. ``bench/peers.py`` runs these on the
#: peer harness's database, which Alembic does not manage.
UPGRADE = (
    """
    CREATE OR REPLACE FUNCTION inkwell_notify_account_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('inkwell_accounts', '*');
        ELSE
            PERFORM pg_notify('inkwell_accounts', OLD.id::text);
            IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
                PERFORM pg_notify('inkwell_accounts', NEW.id::text);
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "DROP TRIGGER IF EXISTS inkwell_account_changes ON users",
    """
    CREATE TRIGGER inkwell_account_changes
    AFTER UPDATE OF id, role, is_active OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION inkwell_notify_account_change()
    """,
    "DROP TRIGGER IF EXISTS inkwell_accounts_truncated ON users",
    """
    CREATE TRIGGER inkwell_accounts_truncated
    AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION inkwell_notify_account_change()
    """,
)
DOWNGRADE = (
    "DROP TRIGGER IF EXISTS inkwell_accounts_truncated ON users",
    "DROP TRIGGER IF EXISTS inkwell_account_changes ON users",
    "DROP FUNCTION IF EXISTS inkwell_notify_account_change()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
