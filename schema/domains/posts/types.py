"""Posts: the ``Post`` type, its relationships, and the root fields that list and find posts."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, exists, select

from db import models
from schema.context import Context, Info
from schema.errors import BadUserInput
from schema.reads import loaders
from schema.reads.batch import load_batch, load_one, required
from schema.reads.batch_fields import batch_field
from schema.reads.folding import Linked, foldable
from schema.reads.keyset import ID_KEY, SortKey
from schema.reads.pruning import prunable
from schema.reads.tables_read import register_tables
from schema.reads.visibility import visible_posts
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
from schema.relay.node_loading import load_nodes, to_node
from schema.validation import MAX_SEARCH, text_argument
from schema.writes.field_checks import normalise_tag

if TYPE_CHECKING:
    from schema.domains.comments.types import Comment, CommentOrder
    from schema.domains.tags.types import Tag
    from schema.domains.users.types import User

LazyUser = Annotated["User", strawberry.lazy("schema.domains.users.types")]
LazyComment = Annotated["Comment", strawberry.lazy("schema.domains.comments.types")]
LazyCommentOrder = Annotated["CommentOrder", strawberry.lazy("schema.domains.comments.types")]
LazyTag = Annotated["Tag", strawberry.lazy("schema.domains.tags.types")]


@strawberry.enum
class PostStatus(Enum):
    DRAFT = "draft"
    PUBLISHED = "published"


#: The member for each stored value (a dict read; calling the enum costs several times more).
_STATUSES = {status.value: status for status in PostStatus}


@strawberry.enum
class PostOrderField(Enum):
    ID = "id"
    CREATED_AT = "createdAt"
    PUBLISHED_AT = "publishedAt"
    TITLE = "title"


POST_SORT_KEYS = {
    PostOrderField.ID: ID_KEY,
    PostOrderField.CREATED_AT: SortKey("createdAt", "created_at", "datetime"),
    PostOrderField.PUBLISHED_AT: SortKey("publishedAt", "published_at", "datetime", nullable=True),
    PostOrderField.TITLE: SortKey("title", "title", "str"),
}


@strawberry.input(description="Order posts by a field (ties broken by id; unpublished last).")
class PostOrder:
    field: PostOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input(description="Narrow a list of posts; every given condition must hold.")
class PostFilter:
    status: PostStatus | None = None
    author_id: strawberry.ID | None = strawberry.field(
        default=None, description="The author's ID (a global ID or the numeric id)."
    )
    tag: str | None = strawberry.field(default=None, description="Posts carrying this tag name.")
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the title."
    )
    published_after: datetime | None = strawberry.field(
        default=None, description="Published at or after this time (no offset: UTC)."
    )
    published_before: datetime | None = strawberry.field(
        default=None, description="Published before this time (no offset: UTC)."
    )


def _utc(value: datetime, argument: str) -> datetime:
    """``value`` in UTC (naive: taken as UTC). Raises ``BadUserInput`` when the conversion
    leaves the representable years 1-9999."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise BadUserInput(f"`{argument}` is out of range.", argument=argument) from None


def post_where(filter: PostFilter | None) -> tuple[list[ColumnElement[bool]], tuple[Any, ...]]:
    """SQL conditions for ``filter`` and a hashable key identifying them.

    Raises ``BadUserInput`` for a malformed ``authorId``.
    """
    if filter is None:
        return [], ()
    Post = models.Post
    where: list[ColumnElement[bool]] = []
    author = parse_id(filter.author_id, "User", "authorId") if filter.author_id else None
    tag = normalise_tag(filter.tag, "tag") if filter.tag is not None else None
    search = text_argument(filter.search or "", "search", MAX_SEARCH).strip()
    after = _utc(filter.published_after, "publishedAfter") if filter.published_after else None
    before = _utc(filter.published_before, "publishedBefore") if filter.published_before else None
    if filter.status is not None:
        where.append(Post.status == filter.status.value)
    if author is not None:
        where.append(Post.author_id == author)
    if tag is not None:
        link = models.post_tags
        where.append(
            exists(
                select(link.c.post_id)
                .join(models.Tag, models.Tag.id == link.c.tag_id)
                .where(link.c.post_id == Post.id, models.Tag.name == tag)
            )
        )
    if search:
        where.append(Post.title.icontains(search, autoescape=True))
    if after is not None:
        where.append(Post.published_at >= after)
    if before is not None:
        where.append(Post.published_at < before)
    return where, (filter.status, author, tag, search, after, before)


@strawberry.type(description="An article by one author; a draft until published.")
class Post(Node):
    title: str
    content: str
    status: PostStatus
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Optimistic-concurrency version; +1 per update.")
    database_id: BigInt = DATABASE_ID
    author_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.Post) -> Post:
        """The GraphQL ``Post`` for a ``models.Post`` row."""
        post = new_node(cls)
        post.database_id = BigInt(row.id)
        post.author_id = row.author_id
        post.title = row.title
        post.content = row.content
        post.status = _STATUSES[row.status]
        post.published_at = row.published_at
        post.created_at = row.created_at
        post.updated_at = row.updated_at
        post.version = row.version
        return post

    # Relationship fields, declared by their batch resolvers: all the posts of a level in
    # one call (schema.reads.batch_fields).

    @batch_field(description="Who wrote the post.")
    async def author(ctx: Context, posts: list[Post]) -> list[LazyUser]:
        users = await load_nodes(ctx, models.User, [p.author_id for p in posts])
        return required(users, "posts.author_id is a NOT NULL foreign key")

    @batch_field(description="The post's comments, oldest first unless `orderBy` says.")
    async def comments(
        ctx: Context,
        posts: list[Post],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: LazyCommentOrder | None = None,
    ) -> list[Connection[LazyComment]]:
        return await nested_connections(
            ctx,
            models.Comment,
            "Post.comments",
            models.Comment.post_id,
            [p.database_id for p in posts],
            order_by,
            (first, after, last, before),
        )

    @batch_field(
        description="How many comments the post has: `comments`' `totalCount` without its "
        "page (whoever may see a post may see all its comments)."
    )
    async def comment_count(ctx: Context, posts: list[Post]) -> list[int]:
        ids = [p.database_id for p in posts]
        return await nested_counts(
            ctx, models.Comment, "Post.comments", models.Comment.post_id, ids
        )

    @batch_field(description="The post's tags, oldest tag first.")
    async def tags(ctx: Context, posts: list[Post]) -> list[list[LazyTag]]:
        found = await load_batch(loaders.tags_by_post(ctx), [p.database_id for p in posts])
        to_tag = to_node(models.Tag)
        return [[to_tag(row) for row in rows] for rows in found]


register_node("Post", models.Post, Post.from_row)
# Counted by `Post.commentCount` (schema.reads.tables_read).
register_tables("Post.commentCount", models.Comment)
# Columns read only for the fields named (schema.reads.pruning): wide, costly or seldom selected.
prunable(
    models.Post,
    "Post",
    content=("content",),
    published_at=("published_at",),
    created_at=("created_at",),
    updated_at=("updated_at",),
    version=("version",),
)
# A post's author may be read with it, in its statement (schema.reads.folding).
foldable(
    models.Post,
    "Post",
    author=(models.User, "author_id"),
    tags=Linked(models.Tag, models.post_tags, "post_id", "tag_id", loaders.tags_by_post),
)
POSTS = register_listing(Listing(models.Post, Post.from_row, POST_SORT_KEYS, post_where))


async def load_post(ctx: Context, pk: int) -> Post | None:
    """The post with primary key ``pk``, through the DataLoader of ``ctx``'s unit of work."""
    row = await load_one(loaders.by_id(ctx, models.Post), pk)
    return Post.from_row(row) if row is not None else None


@strawberry.type
class PostQueries:
    @strawberry.field(
        description="Posts, filtered and ordered; by id unless `orderBy` says. Drafts are "
        "listed only for their author and admins."
    )
    async def posts(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: PostFilter | None = None,
        order_by: PostOrder | None = None,
    ) -> Connection[Post]:
        where, key = post_where(filter)
        where += visible_posts(info.context.viewer)
        return await root_connection(
            info, POSTS, order_by, (first, after, last, before), where, key
        )

    @strawberry.field(
        description="A post by ID (a global ID or the numeric id); null if it does not exist "
        "or is a draft the viewer may not see."
    )
    async def post(self, info: Info, id: strawberry.ID) -> Post | None:
        return await load_post(info.context, parse_id(id, "Post"))
