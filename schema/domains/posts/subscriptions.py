"""Subscriptions: posts published, updated and deleted, and comments added, as they commit.

Each field follows one kind of committed event (``schema.live``) and yields the current row
through the normal types, so nested fields (author, tags, comments) resolve as in a query,
batched per event. Visibility is the subscriber's: a draft's events reach only its author and
admins. Each result carries its event id (``extensions.eventId``); every field takes
``afterEventId`` to resume after the last one a client saw (``schema.live.stream``). Over
WebSocket (graphql-transport-ws or graphql-ws) at ``/graphql``, and over HTTP as Server-Sent
Events or multipart.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.context import Context, Info
from schema.domains.posts.payloads import DeletePostPayload
from schema.domains.posts.types import Post, PostStatus, load_post
from schema.live.events import Event, EventKind
from schema.live.stream import follow, parse_event_id
from schema.reads import loaders
from schema.relay.node import parse_id, to_global_id
from schema.relay.node_loading import to_node
from schema.writes.field_checks import normalise_tag

if TYPE_CHECKING:
    from schema.domains.comments.types import Comment

LazyComment = Annotated["Comment", strawberry.lazy("schema.domains.comments.types")]

#: Every subscription field's ``afterEventId`` argument.
AfterEventId = Annotated[
    strawberry.ID | None,
    strawberry.argument(
        description="Resume after this event: the `eventId` in the `extensions` of the last "
        "result you received. What was committed since comes first (EVENTS_EXPIRED once "
        "that is older than the server keeps events)."
    ),
]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Posts as they are published, optionally only one author's or only those "
        "carrying a tag."
    )
    async def post_published(
        self,
        info: Info,
        author_id: strawberry.ID | None = None,
        tag: str | None = None,
        after_event_id: AfterEventId = None,
    ) -> AsyncGenerator[Post, None]:
        author = parse_id(author_id, "User", "authorId") if author_id is not None else None
        tag_name = normalise_tag(tag, "tag") if tag is not None else None

        async def resolve(ctx: Context, event: Event) -> Post | None:
            post = await load_post(ctx, event.id)
            # Unpublished (or deleted) again before this subscriber got to it: not news.
            if post is None or post.status is not PostStatus.PUBLISHED:
                return None
            if tag_name is not None:
                tags = await loaders.tags_by_post(ctx).load(event.id)
                if all(t.name != tag_name for t in tags):
                    return None
            return post

        def match(event: Event) -> bool:
            return author is None or event.author_id == author

        after = parse_event_id(after_event_id)
        async for post in follow(info, EventKind.POST_PUBLISHED, match, resolve, after):
            yield post

    @strawberry.subscription(description="A post, each time it changes (while visible to you).")
    async def post_updated(
        self, info: Info, id: strawberry.ID, after_event_id: AfterEventId = None
    ) -> AsyncGenerator[Post, None]:
        pk = parse_id(id, "Post")
        after = parse_event_id(after_event_id)

        async def resolve(ctx: Context, event: Event) -> Post | None:
            return await load_post(ctx, pk)

        updates = follow(info, EventKind.POST_UPDATED, lambda e: e.id == pk, resolve, after)
        async for post in updates:
            yield post

    @strawberry.subscription(description="Comments as they are added to a post.")
    async def comment_added(
        self, info: Info, post_id: strawberry.ID, after_event_id: AfterEventId = None
    ) -> AsyncGenerator[LazyComment, None]:
        pk = parse_id(post_id, "Post", "postId")
        after = parse_event_id(after_event_id)

        async def resolve(ctx: Context, event: Event) -> Comment | None:
            row = await loaders.by_id(ctx, models.Comment).load(event.id)
            return to_node(models.Comment)(row) if row is not None else None

        def match(event: Event) -> bool:
            return event.post_id == pk

        async for comment in follow(info, EventKind.COMMENT_ADDED, match, resolve, after):
            yield comment

    @strawberry.subscription(
        description="The deletion of a post (a draft's only for its author and admins)."
    )
    async def post_deleted(
        self, info: Info, id: strawberry.ID, after_event_id: AfterEventId = None
    ) -> AsyncGenerator[DeletePostPayload, None]:
        pk = parse_id(id, "Post")
        after = parse_event_id(after_event_id)

        async def resolve(ctx: Context, event: Event) -> DeletePostPayload | None:
            viewer = ctx.viewer
            if not event.published and (viewer is None or not viewer.may_edit(event.author_id)):
                return None
            return DeletePostPayload(deleted_id=to_global_id("Post", event.id))

        deletions = follow(info, EventKind.POST_DELETED, lambda e: e.id == pk, resolve, after)
        async for payload in deletions:
            yield payload
