"""Tags: the ``Tag`` type, its posts, and the root fields that list and find tags."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.context import Context, Info
from schema.reads import fetch
from schema.reads.batch_fields import batch_field
from schema.reads.keyset import ID_KEY, SortKey
from schema.reads.visibility import visible_posts, visible_tags
from schema.relay.connection import (
    After,
    Before,
    Connection,
    First,
    Last,
    OrderDirection,
)
from schema.relay.listing import Listing, nested_connections, register_listing, root_connection
from schema.relay.node import DATABASE_ID, BigInt, Node, new_node, register_node
from schema.writes.field_checks import normalise_tag

if TYPE_CHECKING:
    from schema.domains.posts.types import Post, PostFilter, PostOrder

LazyPost = Annotated["Post", strawberry.lazy("schema.domains.posts.types")]
LazyPostFilter = Annotated["PostFilter", strawberry.lazy("schema.domains.posts.types")]
LazyPostOrder = Annotated["PostOrder", strawberry.lazy("schema.domains.posts.types")]


@strawberry.enum
class TagOrderField(Enum):
    ID = "id"
    NAME = "name"


TAG_SORT_KEYS = {TagOrderField.ID: ID_KEY, TagOrderField.NAME: SortKey("name", "name", "str")}


@strawberry.input(description="Order tags by a field (ties broken by id).")
class TagOrder:
    field: TagOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.type(description="A topic label; a post carries up to 10.")
class Tag(Node):
    name: str
    database_id: BigInt = DATABASE_ID

    @classmethod
    def from_row(cls, row: models.Tag) -> Tag:
        """The GraphQL ``Tag`` for a ``models.Tag`` row."""
        tag = new_node(cls)
        tag.database_id = BigInt(row.id)
        tag.name = row.name
        return tag

    # Declared by its batch resolver: all the tags of a level in one call
    # (schema.reads.batch_fields).
    @batch_field(description="Posts carrying this tag.")
    async def posts(
        ctx: Context,
        tags: list[Tag],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: LazyPostFilter | None = None,
        order_by: LazyPostOrder | None = None,
    ) -> list[Connection[LazyPost]]:
        link = models.post_tags
        return await nested_connections(
            ctx,
            models.Post,
            "Tag.posts",
            link.c.tag_id,
            [t.database_id for t in tags],
            order_by,
            (first, after, last, before),
            visible_posts(ctx.viewer),
            filter=filter,
            join=(link, link.c.post_id == models.Post.id),
        )


register_node("Tag", models.Tag, Tag.from_row)
TAGS = register_listing(Listing(models.Tag, Tag.from_row, TAG_SORT_KEYS))


@strawberry.type
class TagQueries:
    @strawberry.field(
        description="Tags carried by a post the viewer may see (admins: all tags); by id "
        "unless `orderBy` says."
    )
    async def tags(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        order_by: TagOrder | None = None,
    ) -> Connection[Tag]:
        where = visible_tags(info.context.viewer)  # the viewer's alone: no filter to key
        return await root_connection(
            info, TAGS, order_by, (first, after, last, before), where, None
        )

    @strawberry.field(
        description="A tag by name (case-insensitive); null unless a post the viewer may see "
        "carries it."
    )
    async def tag(self, info: Info, name: str) -> Tag | None:
        rows = await fetch.scalars(
            info.context,
            fetch.select_where(
                models.Tag,
                models.Tag.name == normalise_tag(name),
                *visible_tags(info.context.viewer),
            ),
        )
        return Tag.from_row(rows[0]) if rows else None
