"""Comments: the ``Comment`` type and the connections that list comments."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.context import Context
from schema.reads.batch import required
from schema.reads.batch_fields import batch_field
from schema.reads.folding import foldable
from schema.reads.keyset import ID_KEY, SortKey
from schema.reads.pruning import prunable
from schema.relay.connection import OrderDirection
from schema.relay.listing import Listing, register_listing
from schema.relay.node import DATABASE_ID, BigInt, Node, new_node, register_node
from schema.relay.node_loading import load_nodes

if TYPE_CHECKING:
    from schema.domains.posts.types import Post
    from schema.domains.users.types import User

LazyUser = Annotated["User", strawberry.lazy("schema.domains.users.types")]
LazyPost = Annotated["Post", strawberry.lazy("schema.domains.posts.types")]


@strawberry.enum
class CommentOrderField(Enum):
    ID = "id"
    CREATED_AT = "createdAt"


COMMENT_SORT_KEYS = {
    CommentOrderField.ID: ID_KEY,
    CommentOrderField.CREATED_AT: SortKey("createdAt", "created_at", "datetime"),
}


@strawberry.input(description="Order comments by a field (ties broken by id).")
class CommentOrder:
    field: CommentOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type(description="A reader's comment on a post.")
class Comment(Node):
    body: str
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Optimistic-concurrency version; +1 per update.")
    database_id: BigInt = DATABASE_ID
    author_id: strawberry.Private[int]
    post_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: models.Comment) -> Comment:
        """The GraphQL ``Comment`` for a ``models.Comment`` row."""
        comment = new_node(cls)
        comment.database_id = BigInt(row.id)
        comment.author_id = row.author_id
        comment.post_id = row.post_id
        comment.body = row.body
        comment.created_at = row.created_at
        comment.updated_at = row.updated_at
        comment.version = row.version
        return comment

    # Relationship fields, declared by their batch resolvers: all the comments of a level
    # in one call (schema.reads.batch_fields).

    @batch_field(description="Who wrote the comment.")
    async def author(ctx: Context, comments: list[Comment]) -> list[LazyUser]:
        users = await load_nodes(ctx, models.User, [c.author_id for c in comments])
        return required(users, "comments.author_id is a NOT NULL foreign key")

    @batch_field(description="The post the comment is on.")
    async def post(ctx: Context, comments: list[Comment]) -> list[LazyPost]:
        posts = await load_nodes(ctx, models.Post, [c.post_id for c in comments])
        return required(posts, "comments.post_id is a NOT NULL foreign key")


register_node("Comment", models.Comment, Comment.from_row)
# Columns read only for the fields named (schema.reads.pruning): wide, costly or seldom selected.
prunable(
    models.Comment,
    "Comment",
    created_at=("created_at",),
    updated_at=("updated_at",),
    version=("version",),
)
# A comment's author may be read with it, in its statement (schema.reads.folding).
foldable(models.Comment, "Comment", author=(models.User, "author_id"))
COMMENTS = register_listing(Listing(models.Comment, Comment.from_row, COMMENT_SORT_KEYS))
