"""Mutations on posts: create (one or many), update, publish, unpublish, delete, set tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from sqlalchemy import delete, insert

from db import models
from db.types import utcnow
from schema.context import Context, Info
from schema.domains.posts.inputs import (
    CreatePostInput,
    CreatePostsInput,
    PostIdInput,
    SetPostTagsInput,
    UpdatePostInput,
)
from schema.domains.posts.payloads import (
    ChangeResult,
    CreatePostResult,
    CreatePostsPayload,
    CreatePostsResult,
    DeletePostPayload,
    DeletePostResult,
    PostPayload,
    PublishPostResult,
    SetPostTagsResult,
    UpdatePostResult,
)
from schema.domains.posts.types import Post, PostStatus
from schema.live.events import Event, EventKind, post_event
from schema.reads import loaders
from schema.writes import editable, flush, on_conflict
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import CONTENT_MAX, TITLE_MAX, FieldChecks, given
from schema.writes.results import (
    MutationError,
    account_gone,
    sign_in_required,
)

AUTHOR_FOREIGN_KEY = "fk_posts_author_id_users"
#: Most posts one ``createPosts`` takes.
MAX_BULK_POSTS = 100


def _new_post(checks: FieldChecks, author_id: int, input: CreatePostInput) -> dict[str, Any]:
    """The column values of a new post (recording any invalid field in ``checks``)."""
    title = checks.text("title", input.title, min_length=1, max_length=TITLE_MAX)
    content = checks.text("content", input.content, max_length=CONTENT_MAX, strip=False)
    # Publishing uses the application's clock, not SQL now(): every row of the one multi-row
    # INSERT must have the same shape.
    return {
        "author_id": author_id,
        "title": title,
        "content": content,
        "status": PostStatus.PUBLISHED.value if input.publish else PostStatus.DRAFT.value,
        "published_at": datetime.now(UTC) if input.publish else None,
    }


async def _create_posts(
    ctx: Context, inputs: list[CreatePostInput], checks: FieldChecks, nested: bool
) -> list[models.Post] | MutationError:
    """Validate and insert posts with their tags: one INSERT for the posts, two statements
    for the tags (``ensure_tags``) and one INSERT for the links, whatever the count."""
    viewer = ctx.viewer
    if viewer is None:
        return sign_in_required()
    values, tag_names = [], []
    for index, input in enumerate(inputs):
        item = checks.nested(index) if nested else checks
        values.append(_new_post(item, viewer.id, input))
        tag_names.append(item.tag_names("tagNames", input.tag_names))
    if invalid := checks.result():
        return invalid
    # The author's account may be deleted by a concurrent operation after sign-in.
    gone = {AUTHOR_FOREIGN_KEY: account_gone}
    rows = await flush.insert_rows(ctx, models.Post, values, constraint_errors=gone)
    if isinstance(rows, MutationError):
        return rows
    flush.written(ctx, *rows)
    tags = await on_conflict.ensure_tags(ctx, (name for names in tag_names for name in names))
    links = [
        {"post_id": row.id, "tag_id": tags[name].id}
        for row, names in zip(rows, tag_names, strict=True)
        for name in names
    ]
    if links:
        await ctx.run(lambda session: session.execute(insert(models.post_tags).values(links)))
    by_post = loaders.tags_by_post(ctx)
    for row, names in zip(rows, tag_names, strict=True):
        by_post.prime(row.id, sorted((tags[name] for name in names), key=lambda t: t.id))
    published = (row for row in rows if row.status == PostStatus.PUBLISHED.value)
    flush.announce(ctx, *(post_event(EventKind.POST_PUBLISHED, row) for row in published))
    return rows


#: Posts belong to their author.
OWNED_POSTS = editable.Owned(models.Post, lambda row: row.author_id)


async def _saved(
    info: Info, row: models.Post, target: flush.Target, *kinds: EventKind
) -> ChangeResult:
    """Flush the change to ``row`` and announce ``kinds`` of event about it, if the flush
    changed the row at all (a new version: setting a value it already had is no change)."""
    version = row.version
    if failed := await flush.save(info.context, target=target, prime=[row]):
        return failed  # type: ignore[return-value]
    if row.version != version:
        flush.announce(info.context, *(post_event(kind, row) for kind in kinds))
    return PostPayload(post=Post.from_row(row))


async def _deleted_post(row: models.Post) -> list[Event]:
    return [post_event(EventKind.POST_DELETED, row)]


@strawberry.type
class PostMutations:
    @strawberry.mutation(description="Write a post as the viewer.", extensions=[AtomicMutation()])
    async def create_post(self, info: Info, input: CreatePostInput) -> CreatePostResult | None:
        rows = await _create_posts(info.context, [input], FieldChecks(), nested=False)
        if isinstance(rows, MutationError):
            return rows  # type: ignore[return-value]
        return PostPayload(post=Post.from_row(rows[0]))

    @strawberry.mutation(
        description=f"Write up to {MAX_BULK_POSTS} posts at once, all or none "
        "(errors name fields as `posts.<index>.<field>`).",
        extensions=[AtomicMutation()],
    )
    async def create_posts(self, info: Info, input: CreatePostsInput) -> CreatePostsResult | None:
        checks = FieldChecks()
        if not 1 <= len(input.posts) <= MAX_BULK_POSTS:
            checks.add("posts", f"Give 1 to {MAX_BULK_POSTS} posts (this is {len(input.posts)}).")
            return checks.result()
        rows = await _create_posts(info.context, input.posts, checks.nested("posts"), nested=True)
        if isinstance(rows, MutationError):
            return rows  # type: ignore[return-value]
        return CreatePostsPayload(posts=[Post.from_row(row) for row in rows])

    @strawberry.mutation(
        description="Change a post's title or content (its author or an admin).",
        extensions=[AtomicMutation()],
    )
    async def update_post(self, info: Info, input: UpdatePostInput) -> UpdatePostResult | None:
        checks = FieldChecks()
        title = content = None
        if given(input.title):
            title = checks.text("title", input.title, min_length=1, max_length=TITLE_MAX)
        if given(input.content):
            content = checks.text("content", input.content, max_length=CONTENT_MAX, strip=False)
        found = await editable.find_editable(
            info.context, OWNED_POSTS, input.id, "edit this post", checks=checks
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        if conflict := flush.stale(row, input.expected_version, target):
            return conflict
        if title is not None:
            row.title = title
        if content is not None:
            row.content = content
        return await _saved(info, row, target, EventKind.POST_UPDATED)

    @strawberry.mutation(
        description="Publish a draft (its author or an admin); publishing a published post "
        "changes nothing.",
        extensions=[AtomicMutation()],
    )
    async def publish_post(self, info: Info, input: PostIdInput) -> PublishPostResult | None:
        found = await editable.find_editable(
            info.context, OWNED_POSTS, input.id, "publish this post"
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        if row.status != PostStatus.PUBLISHED.value:
            # The application's clock, as for createPost: a value the payload already has
            # (SQL now() here would be expired by the flush and read back by a SELECT).
            row.status, row.published_at = PostStatus.PUBLISHED.value, datetime.now(UTC)
        return await _saved(info, row, target, EventKind.POST_PUBLISHED, EventKind.POST_UPDATED)

    @strawberry.mutation(
        description="Turn a post back into a draft (its author or an admin).",
        extensions=[AtomicMutation()],
    )
    async def unpublish_post(self, info: Info, input: PostIdInput) -> PublishPostResult | None:
        found = await editable.find_editable(
            info.context, OWNED_POSTS, input.id, "unpublish this post"
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        if row.status != PostStatus.DRAFT.value:
            row.status, row.published_at = PostStatus.DRAFT.value, None
        return await _saved(info, row, target, EventKind.POST_UPDATED)

    @strawberry.mutation(
        description="Delete a post with its comments (its author or an admin).",
        extensions=[AtomicMutation()],
    )
    async def delete_post(self, info: Info, input: PostIdInput) -> DeletePostResult | None:
        deleted = await editable.delete_editable(
            info.context, OWNED_POSTS, input.id, "delete this post", events=_deleted_post
        )
        if isinstance(deleted, MutationError):
            return deleted  # type: ignore[return-value]
        return DeletePostPayload(deleted_id=deleted)

    @strawberry.mutation(
        description="Replace a post's tags (its author or an admin); new tags are created.",
        extensions=[AtomicMutation()],
    )
    async def set_post_tags(self, info: Info, input: SetPostTagsInput) -> SetPostTagsResult | None:
        checks = FieldChecks()
        names = checks.tag_names("tagNames", input.tag_names)
        found = await editable.find_editable(
            info.context, OWNED_POSTS, input.post_id, "tag this post", checks=checks, field="postId"
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        ctx = info.context
        # Touch the post first: the versioned UPDATE locks its row, so concurrent tag changes
        # of one post take turns, and the change counts as an update of the post.
        row.updated_at = utcnow()
        if failed := await flush.save(ctx, target=target, prime=[row]):
            return failed  # type: ignore[return-value]
        tags = await on_conflict.ensure_tags(ctx, names)
        link = models.post_tags
        keep = [tag.id for tag in tags.values()]
        unlink = delete(link).where(link.c.post_id == row.id, link.c.tag_id.not_in(keep))
        await ctx.run(lambda session: session.execute(unlink))
        if keep:
            relink = on_conflict.insert_ignoring_conflicts(ctx, link, ["post_id", "tag_id"]).values(
                [{"post_id": row.id, "tag_id": tag_id} for tag_id in keep]
            )
            await ctx.run(lambda session: session.execute(relink))
        loaders.tags_by_post(ctx).prime(row.id, sorted(tags.values(), key=lambda t: t.id))
        flush.announce(ctx, post_event(EventKind.POST_UPDATED, row))
        return PostPayload(post=Post.from_row(row))
