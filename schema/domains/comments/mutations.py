"""Mutations on comments: add, update, delete."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db import models
from schema.context import Info
from schema.domains.comments.types import Comment
from schema.live.events import comment_added
from schema.writes import editable, flush
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import BODY_MAX, FieldChecks
from schema.writes.results import (
    ChangeErrors,
    Forbidden,
    MutationError,
    NotFound,
    RolledBack,
    Unauthenticated,
    ValidationError,
    account_gone,
    forbidden,
    not_found,
    sign_in_required,
)

POST_FOREIGN_KEY = "fk_comments_post_id_posts"
AUTHOR_FOREIGN_KEY = "fk_comments_author_id_users"


@strawberry.input(description="A new comment on a published post (or on your own draft).")
class AddCommentInput:
    post_id: strawberry.ID
    body: str = strawberry.field(description="1-10,000 characters.")


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The `version` the change was based on (see `VersionConflict`)."
    )
    body: str


@strawberry.input
class CommentIdInput:
    id: strawberry.ID


@strawberry.type
class CommentPayload:
    comment: Comment


@strawberry.type
class DeleteCommentPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The ID of the deleted comment.")


AddCommentResult = Annotated[
    CommentPayload | ValidationError | NotFound | Forbidden | Unauthenticated | RolledBack,
    strawberry.union("AddCommentResult"),
]
UpdateCommentResult = Annotated[
    CommentPayload | ChangeErrors,
    strawberry.union("UpdateCommentResult"),
]
DeleteCommentResult = Annotated[
    DeleteCommentPayload | ChangeErrors,
    strawberry.union("DeleteCommentResult"),
]


#: What adding a comment reads of its post: whether it may be commented on, and the event's
#: routing (``comment_added``).
CHECKED = (models.Post.id, models.Post.author_id, models.Post.status)

#: Comments belong to their author.
OWNED_COMMENTS = editable.Owned(models.Comment, lambda row: row.author_id)


@strawberry.type
class CommentMutations:
    @strawberry.mutation(
        description="Comment on a published post, or on your own draft.",
        extensions=[AtomicMutation()],
    )
    async def add_comment(self, info: Info, input: AddCommentInput) -> AddCommentResult | None:
        ctx = info.context
        viewer = ctx.viewer
        if viewer is None:
            return sign_in_required()
        checks = FieldChecks()
        post_id = checks.id("postId", input.post_id, "Post")
        body = checks.text("body", input.body, min_length=1, max_length=BODY_MAX)
        if invalid := checks.result():
            return invalid
        # Locked FOR SHARE: the post cannot be unpublished or deleted between this check and
        # the commit (a concurrent unpublish waits for it). Only what the check and the
        # event need; the viewer's row comes with it when not read yet (``viewer_check``).
        post = await editable.load_for_write(ctx, models.Post, post_id, share=True, columns=CHECKED)
        if post is None:
            return not_found("Post", input.post_id)
        if post.status != models.PUBLISHED and post.author_id != viewer.id:
            return forbidden("comment on a draft that is not yours")
        row = models.Comment(post_id=post.id, author_id=viewer.id, body=body)
        # The post may be deleted between the check above and the INSERT: the foreign key
        # then fails, and that is this post not being found, not a server error.
        # (SQLite does not say which foreign key failed: there, either reads as the post.)
        deleted = {
            POST_FOREIGN_KEY: lambda: not_found("Post", input.post_id),
            AUTHOR_FOREIGN_KEY: account_gone,
        }
        if failed := await flush.save(ctx, add=[row], prime=[row], constraint_errors=deleted):
            return failed  # type: ignore[return-value]
        flush.announce(ctx, comment_added(row, post))
        return CommentPayload(comment=Comment.from_row(row))

    @strawberry.mutation(
        description="Change a comment's body (its author or an admin).",
        extensions=[AtomicMutation()],
    )
    async def update_comment(
        self, info: Info, input: UpdateCommentInput
    ) -> UpdateCommentResult | None:
        checks = FieldChecks()
        body = checks.text("body", input.body, min_length=1, max_length=BODY_MAX)
        found = await editable.find_editable(
            info.context, OWNED_COMMENTS, input.id, "edit this comment", checks=checks
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        if conflict := flush.stale(row, input.expected_version, target):
            return conflict
        row.body = body
        if failed := await flush.save(info.context, target=target, prime=[row]):
            return failed  # type: ignore[return-value]
        return CommentPayload(comment=Comment.from_row(row))

    @strawberry.mutation(
        description="Delete a comment (its author or an admin).", extensions=[AtomicMutation()]
    )
    async def delete_comment(self, info: Info, input: CommentIdInput) -> DeleteCommentResult | None:
        deleted = await editable.delete_editable(
            info.context, OWNED_COMMENTS, input.id, "delete this comment"
        )
        if isinstance(deleted, MutationError):
            return deleted  # type: ignore[return-value]
        return DeleteCommentPayload(deleted_id=deleted)
