"""Every model, imported here so ``Base.metadata`` (and Alembic's autogenerate) sees all tables."""

from db.base import Base
from db.models.comment import Comment
from db.models.event import OutboxEvent
from db.models.post import DRAFT, POST_STATUSES, PUBLISHED, Post
from db.models.tag import Tag, post_tags
from db.models.user import ROLES, User

__all__ = [
    "DRAFT",
    "POST_STATUSES",
    "PUBLISHED",
    "ROLES",
    "Base",
    "Comment",
    "OutboxEvent",
    "Post",
    "Tag",
    "User",
    "post_tags",
]
