"""Every model, imported here so ``Base.metadata`` (and Alembic's autogenerate) sees all tables."""

from db.base import Base
from db.models.comment import Comment
from db.models.post import POST_STATUSES, Post
from db.models.tag import Tag, post_tags
from db.models.user import ROLES, User

__all__ = ["POST_STATUSES", "ROLES", "Base", "Comment", "Post", "Tag", "User", "post_tags"]
