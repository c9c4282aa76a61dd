"""Tags and the post_tags association table (many-to-many with posts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Identity, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base
from db.types import SQLITE_TABLE_ARGS, BigIntPK

if TYPE_CHECKING:
    from db.models.post import Post

# A plain Table, not a model: the pair is the whole row. The primary key (post_id, tag_id)
# serves lookups by post; the tag_id index serves Tag.posts.
post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", BigIntPK, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigIntPK, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_post_tags_tag_id", "tag_id"),
)


class Tag(Base):
    """A topic label, linked to posts through ``post_tags``."""

    __tablename__ = "tags"
    __table_args__ = SQLITE_TABLE_ARGS

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    # Stored normalised (trimmed, lower-case).
    name: Mapped[str] = mapped_column(String(50), unique=True)

    posts: Mapped[list[Post]] = relationship(
        secondary=post_tags, back_populates="tags", lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Tag(id={self.id!r}, name={self.name!r})"
