"""Initial schema: users, posts, comments, tags, post_tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of db.types, so this revision means the same thing forever.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMPTZ = sa.DateTime(timezone=True)
SQLITE_UTC_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"


def _now() -> sa.TextClause:
    is_sqlite = op.get_bind().dialect.name == "sqlite"
    return sa.text(SQLITE_UTC_NOW if is_sqlite else "now()")


def _id() -> sa.Column[int]:
    return sa.Column("id", BIGINT_PK, sa.Identity(), primary_key=True)


def _timestamps_and_version() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", TIMESTAMPTZ, nullable=False, server_default=_now()),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False, server_default=_now()),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    ]


def _fk(column: str, target: str) -> sa.Column[int]:
    return sa.Column(
        column, BIGINT_PK, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("password_hash", sa.String(255), nullable=True),
        *_timestamps_and_version(),
        sa.CheckConstraint("role IN ('member', 'admin')", name="role"),
        sa.UniqueConstraint("email"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "tags",
        _id(),
        sa.Column("name", sa.String(50), nullable=False),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "posts",
        _id(),
        _fk("author_id", "users"),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("published_at", TIMESTAMPTZ, nullable=True),
        *_timestamps_and_version(),
        sa.CheckConstraint("status IN ('draft', 'published')", name="status"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_posts_author_id", "posts", ["author_id"])
    op.create_table(
        "comments",
        _id(),
        _fk("post_id", "posts"),
        _fk("author_id", "users"),
        sa.Column("body", sa.Text(), nullable=False),
        *_timestamps_and_version(),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_comments_post_id", "comments", ["post_id"])
    op.create_index("ix_comments_author_id", "comments", ["author_id"])
    op.create_table(
        "post_tags",
        sa.Column(
            "post_id",
            BIGINT_PK,
            sa.ForeignKey("posts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id",
            BIGINT_PK,
            sa.ForeignKey("tags.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_post_tags_tag_id", "post_tags", ["tag_id"])


def downgrade() -> None:
    for table in ("post_tags", "comments", "posts", "tags", "users"):
        op.drop_table(table)
