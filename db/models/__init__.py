"""Every model, imported here so ``Base.metadata`` (and Alembic's autogenerate) sees all tables."""

from db.base import Base
from db.models.comment import Comment
from db.models.event import OutboxEvent
from db.models.post import DRAFT, POST_STATUSES, PUBLISHED, Post
from db.models.rotated_refresh_token import RotatedRefreshToken
from db.models.sign_in_session import DEVICE_LABEL_MAX, SignInSession
from db.models.tag import Tag, post_tags
from db.models.user import ROLES, User

__all__ = [
    "DEVICE_LABEL_MAX",
    "DRAFT",
    "POST_STATUSES",
    "PUBLISHED",
    "ROLES",
    "Base",
    "Comment",
    "OutboxEvent",
    "Post",
    "RotatedRefreshToken",
    "SignInSession",
    "Tag",
    "User",
    "post_tags",
]
