"""Posts: drafts until published."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Identity, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, TimestampedVersioned
from db.models.tag import post_tags
from db.types import SQLITE_TABLE_ARGS, BigIntPK, UTCDateTime

if TYPE_CHECKING:
    from db.models.comment import Comment
    from db.models.tag import Tag
    from db.models.user import User

#: A post's ``status``: a draft, seen only by its author and admins, until published.
DRAFT = "draft"
PUBLISHED = "published"
POST_STATUSES = (DRAFT, PUBLISHED)


class Post(TimestampedVersioned, Base):
    """An article; ``published_at`` is set exactly when ``status`` is ``published``."""

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published')", name="status"),
        SQLITE_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    author_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    author: Mapped[User] = relationship(back_populates="posts", lazy="raise")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags, back_populates="posts", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Post(id={self.id!r}, title={self.title!r})"
