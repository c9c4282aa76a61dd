"""Comments on posts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Identity, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, TimestampedVersioned
from db.types import SQLITE_TABLE_ARGS, BigIntPK

if TYPE_CHECKING:
    from db.models.post import Post
    from db.models.user import User


class Comment(TimestampedVersioned, Base):
    """A comment by ``author`` on ``post``."""

    __tablename__ = "comments"
    __table_args__ = SQLITE_TABLE_ARGS

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    post_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(
        BigIntPK, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)

    post: Mapped[Post] = relationship(back_populates="comments", lazy="raise")
    author: Mapped[User] = relationship(back_populates="comments", lazy="raise")

    def __repr__(self) -> str:
        return f"Comment(id={self.id!r}, post_id={self.post_id!r})"
