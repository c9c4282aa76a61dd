"""Users: authors of posts and comments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Identity, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, TimestampedVersioned
from db.types import SQLITE_TABLE_ARGS, BigIntPK, UTCDateTime

if TYPE_CHECKING:
    from db.models.comment import Comment
    from db.models.post import Post

ROLES = ("member", "admin")


class User(TimestampedVersioned, Base):
    """A registered person; ``role`` is ``member`` or ``admin``."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('member', 'admin')", name="role"),
        SQLITE_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    # Stored normalised (trimmed, lower-case), so the UNIQUE constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Deferred: only signing in reads it, so the viewer lookup on every request (and every
    # author load) leaves it out; raiseload makes an accidental read fail loudly.
    password_hash: Mapped[str | None] = mapped_column(
        String(255), deferred=True, deferred_raiseload=True
    )
    # When the password last changed (``changePassword``, ``reset-password``): access tokens
    # issued before it are refused (``schema.auth.viewer``). Deferred like the hash: only the
    # viewer's lookup reads it.
    password_changed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), deferred=True, deferred_raiseload=True
    )

    # lazy="raise": every read goes through a per-request DataLoader; an accidental lazy
    # load (one query per row) fails loudly instead of hiding an N+1.
    # passive_deletes: the database's ON DELETE CASCADE removes children in one statement.
    posts: Mapped[list[Post]] = relationship(
        back_populates="author", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    comments: Mapped[list[Comment]] = relationship(
        back_populates="author", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r})"
