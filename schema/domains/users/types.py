"""Users: the ``User`` type, its connections, and the root fields that find users."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from sqlalchemy import ColumnElement, or_

from db import models
from db.reader import OMITTED
from schema.auth.viewer import Viewer
from schema.context import Context, Info
from schema.domains.users.sessions import Session, own_sessions
from schema.reads import fetch, loaders
from schema.reads.batch import load_one
from schema.reads.batch_fields import batch_field
from schema.reads.keyset import ID_KEY, SortKey
from schema.reads.pruning import prunable
from schema.reads.tables_read import register_tables
from schema.reads.visibility import may_see_email, visible_comments, visible_posts
from schema.relay.connection import (
    After,
    Before,
    Connection,
    First,
    Last,
    OrderDirection,
)
from schema.relay.listing import (
    Listing,
    nested_connections,
    nested_counts,
    register_listing,
    root_connection,
)
from schema.relay.node import DATABASE_ID, BigInt, Node, new_node, parse_id, register_node
from schema.validation import MAX_SEARCH, text_argument
from schema.writes.field_checks import EMAIL_MAX, normalise_email

if TYPE_CHECKING:
    from schema.domains.comments.types import Comment, CommentOrder
    from schema.domains.posts.types import Post, PostFilter, PostOrder

# Types of the other domains, resolved when the schema is built (the modules import each other).
LazyPost = Annotated["Post", strawberry.lazy("schema.domains.posts.types")]
LazyPostFilter = Annotated["PostFilter", strawberry.lazy("schema.domains.posts.types")]
LazyPostOrder = Annotated["PostOrder", strawberry.lazy("schema.domains.posts.types")]
LazyComment = Annotated["Comment", strawberry.lazy("schema.domains.comments.types")]
LazyCommentOrder = Annotated["CommentOrder", strawberry.lazy("schema.domains.comments.types")]


@strawberry.enum(description="What an account may do.")
class Role(Enum):
    MEMBER = "member"
    ADMIN = "admin"
    EDITOR = strawberry.enum_value(
        "editor",
        description="A role of the shared relational model (other applications on the same "
        "database may assign it); Inkwell reads it with member rights and never assigns it.",
    )


#: The member for each stored value (a dict read; calling the enum costs several times more).
_ROLES = {member.value: member for member in Role}


@strawberry.enum
class UserOrderField(Enum):
    ID = "id"
    CREATED_AT = "createdAt"
    NAME = "name"


USER_SORT_KEYS = {
    UserOrderField.ID: ID_KEY,
    UserOrderField.CREATED_AT: SortKey("createdAt", "created_at", "datetime"),
    UserOrderField.NAME: SortKey("name", "name", "str"),
}


@strawberry.input(description="Order users by a field (ties broken by id).")
class UserOrder:
    field: UserOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Narrow a list of users; every given condition must hold.")
class UserFilter:
    is_active: bool | None = None
    role: Role | None = None
    search: str | None = strawberry.field(
        default=None,
        description="Case-insensitive substring of the name (and, for admins, of the email).",
    )


def user_where(
    filter: UserFilter | None, viewer: Viewer | None
) -> tuple[list[ColumnElement[bool]], tuple[Any, ...]]:
    """SQL conditions for ``filter`` and a hashable key identifying them. Search matches
    emails only for admins: for anyone else it would reveal hidden addresses."""
    if filter is None:
        return [], ()
    where: list[ColumnElement[bool]] = []
    if filter.is_active is not None:
        where.append(models.User.is_active.is_(filter.is_active))
    if filter.role is not None:
        where.append(models.User.role == filter.role.value)
    search = text_argument(filter.search or "", "search", MAX_SEARCH).strip()
    if search:
        matches = [models.User.name.icontains(search, autoescape=True)]
        if viewer is not None and viewer.is_admin:
            matches.append(models.User.email.icontains(search, autoescape=True))
        where.append(or_(*matches))
    return where, (filter.is_active, filter.role, search)


#: What ``User.role`` holds when the statement left the column out.
_OMITTED_ROLE = cast(Role, OMITTED)


@strawberry.type(description="A member of the platform: an author of posts and comments.")
class User(Node):
    name: str
    bio: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Optimistic-concurrency version; +1 per update.")
    database_id: BigInt = DATABASE_ID
    email_address: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: models.User) -> User:
        """The GraphQL ``User`` for a ``models.User`` row."""
        user = new_node(cls)
        user.database_id = BigInt(row.id)
        user.email_address = row.email
        user.name = row.name
        user.bio = row.bio
        # A left-out role stays ``OMITTED`` (schema.reads.pruning), like every left-out column.
        user.role = _ROLES[row.role] if row.role is not OMITTED else _OMITTED_ROLE
        user.is_active = row.is_active
        user.created_at = row.created_at
        user.updated_at = row.updated_at
        user.version = row.version
        return user

    # Fields declared by their batch resolvers: all the users of a level in one call
    # (schema.reads.batch_fields).

    @batch_field(description="The email address; null unless the viewer is this user or an admin.")
    def email(ctx: Context, users: list[User]) -> list[str | None]:
        viewer = ctx.viewer
        if viewer is not None and viewer.is_admin:  # may_see_email's answer for every user
            return [u.email_address for u in users]
        return [u.email_address if may_see_email(viewer, u.database_id) else None for u in users]

    @batch_field(description="The user's posts (their drafts only for them and admins).")
    async def posts(
        ctx: Context,
        users: list[User],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: LazyPostFilter | None = None,
        order_by: LazyPostOrder | None = None,
    ) -> list[Connection[LazyPost]]:
        return await nested_connections(
            ctx,
            models.Post,
            "User.posts",
            models.Post.author_id,
            [u.database_id for u in users],
            order_by,
            (first, after, last, before),
            visible_posts(ctx.viewer),
            filter=filter,
        )

    @batch_field(
        description="How many of the user's posts the viewer may see: `posts`' `totalCount` "
        "without its page (their drafts counted only for them and admins)."
    )
    async def post_count(ctx: Context, users: list[User]) -> list[int]:
        ids = [u.database_id for u in users]
        where = visible_posts(ctx.viewer)
        return await nested_counts(
            ctx, models.Post, "User.posts", models.Post.author_id, ids, where
        )

    @batch_field(description="The comments the user wrote.")
    async def comments(
        ctx: Context,
        users: list[User],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: LazyCommentOrder | None = None,
    ) -> list[Connection[LazyComment]]:
        return await nested_connections(
            ctx,
            models.Comment,
            "User.comments",
            models.Comment.author_id,
            [u.database_id for u in users],
            order_by,
            (first, after, last, before),
            visible_comments(ctx.viewer),
        )

    @batch_field(
        description="The user's signed-in sessions, most recently used first: null unless "
        "the viewer is this user (`viewer { sessions }`)."
    )
    async def sessions(ctx: Context, users: list[User]) -> list[list[Session] | None]:
        return await own_sessions(ctx, users)


register_node("User", models.User, User.from_row)
# Counted by `User.postCount` (schema.reads.tables_read): a cached response selecting it
# depends on posts.
register_tables("User.postCount", models.Post)
# Columns read only for the fields named (schema.reads.pruning): wide, costly or seldom selected.
prunable(
    models.User,
    "User",
    bio=("bio",),
    role=("role",),
    is_active=("is_active",),
    created_at=("created_at",),
    updated_at=("updated_at",),
    version=("version",),
)
USERS = register_listing(Listing(models.User, User.from_row, USER_SORT_KEYS))


async def load_user(info: Info, pk: int) -> User | None:
    """The user with primary key ``pk``, through the operation's DataLoader."""
    row = await load_one(loaders.by_id(info.context, models.User), pk)
    return User.from_row(row) if row is not None else None


@strawberry.type
class UserQueries:
    @strawberry.field(description="Users, filtered and ordered; by id unless `orderBy` says.")
    async def users(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: UserFilter | None = None,
        order_by: UserOrder | None = None,
    ) -> Connection[User]:
        where, key = user_where(filter, info.context.viewer)
        return await root_connection(
            info, USERS, order_by, (first, after, last, before), where, key
        )

    @strawberry.field(description="A user by ID (a global ID or the numeric id).")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        return await load_user(info, parse_id(id, "User"))

    @strawberry.field(
        description="A user by email address (case-insensitive); null unless the viewer is "
        "an admin or it is their own address, so addresses cannot be probed."
    )
    async def user_by_email(self, info: Info, email: str) -> User | None:
        address = normalise_email(text_argument(email, "email", EMAIL_MAX))
        viewer = info.context.viewer
        if viewer is None:
            return None
        rows = await fetch.scalars(
            info.context, fetch.select_where(models.User, models.User.email == address)
        )
        if not rows or not may_see_email(viewer, rows[0].id):
            return None
        return User.from_row(rows[0])

    @strawberry.field(description="The signed-in user, or null for an anonymous request.")
    async def viewer(self, info: Info) -> User | None:
        viewer = info.context.viewer
        return None if viewer is None else await load_user(info, viewer.id)
