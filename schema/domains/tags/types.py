"""Tags: the ``Tag`` type, its posts, and the root fields that list and find tags."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, Select, func, select

from db import models
from schema.context import Context, Info
from schema.reads import fetch
from schema.reads.batch_fields import batch_field
from schema.reads.keyset import ID_KEY, SortKey
from schema.reads.tables_read import register_tables
from schema.reads.visibility import visible_posts, visible_tags
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
    count_loader,
    nested_connections,
    nested_counts,
    prime_counts,
    register_listing,
    root_connection,
)
from schema.relay.node import DATABASE_ID, BigInt, Node, new_node, register_node
from schema.writes.field_checks import normalise_tag

if TYPE_CHECKING:
    from schema.auth.viewer import Viewer
    from schema.domains.posts.types import Post, PostFilter, PostOrder

LazyPost = Annotated["Post", strawberry.lazy("schema.domains.posts.types")]
LazyPostFilter = Annotated["PostFilter", strawberry.lazy("schema.domains.posts.types")]
LazyPostOrder = Annotated["PostOrder", strawberry.lazy("schema.domains.posts.types")]


@strawberry.enum
class TagOrderField(Enum):
    ID = "id"
    NAME = "name"
    POST_COUNT = strawberry.enum_value(
        "postCount",
        description="How many posts the viewer may see carry the tag (`Tag.postCount`): "
        "`DESC` for a tag cloud, most used first.",
    )


def _posts_of_tags(viewer: Viewer | None) -> tuple[Any, list[ColumnElement[bool]], fetch.Join]:
    """What ``Tag.posts`` lists, for ``viewer``: the parent column, the visibility
    conditions and the join through ``post_tags``; ``Tag.postCount`` counts the same."""
    link = models.post_tags
    return link.c.tag_id, visible_posts(viewer), (link, link.c.post_id == models.Post.id)


def visible_post_counts(viewer: Viewer | None) -> Select[Any]:
    """``SELECT tag_id, count(*) ... GROUP BY tag_id``: how many posts ``viewer`` may see
    carry each tag that has any, what ``Tag.postCount`` answers, so a page ordered by it
    (``POST_COUNT``) never orders by drafts the viewer may not see (which would tell of
    them). No index holds it: a page ordered by it counts every tag's visible posts first
    (one pass over ``post_tags``), which suits the tens to thousands of tags a site has;
    past that, a count column kept by the writes would be the way."""
    parent, where, (link, on) = _posts_of_tags(viewer)
    counted = select(parent, func.count()).select_from(link)
    if where:  # an admin sees every post: no join needed to count a tag's links
        counted = counted.join(models.Post, on).where(*where)
    return counted.group_by(parent)


TAG_SORT_KEYS = {
    TagOrderField.ID: ID_KEY,
    TagOrderField.NAME: SortKey("name", "name", "str"),
    TagOrderField.POST_COUNT: SortKey(
        "postCount", "post_count", "count", computed=visible_post_counts
    ),
}


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
        parent, where, join = _posts_of_tags(ctx.viewer)
        return await nested_connections(
            ctx,
            models.Post,
            "Tag.posts",
            parent,
            [t.database_id for t in tags],
            order_by,
            (first, after, last, before),
            where,
            filter=filter,
            join=join,
        )

    @batch_field(
        description="How many posts the viewer may see carry this tag: `posts`' "
        "`totalCount` without its page (drafts counted only for their author and admins)."
    )
    async def post_count(ctx: Context, tags: list[Tag]) -> list[int]:
        parent, where, join = _posts_of_tags(ctx.viewer)
        ids = [t.database_id for t in tags]
        return await nested_counts(ctx, models.Post, "Tag.posts", parent, ids, where, join=join)


register_node("Tag", models.Tag, Tag.from_row)
# Counted by `Tag.postCount` (schema.reads.tables_read; a tag's visibility reads them too).
register_tables("Tag.postCount", models.Post, models.post_tags)
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
        ctx = info.context
        where = visible_tags(ctx.viewer)  # the viewer's alone: no filter to key
        connection = await root_connection(
            info, TAGS, order_by, (first, after, last, before), where, None
        )
        if order_by is not None and order_by.field is TagOrderField.POST_COUNT:
            # The page read each tag's count to order by: `postCount` and `posts { totalCount }`
            # need no statement of their own.
            parent, visible, join = _posts_of_tags(ctx.viewer)
            loader = count_loader(ctx, models.Post, "Tag.posts", parent, visible, join=join)
            prime_counts(loader, {row.id: row.post_count for row in connection.rows})
        return connection

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
