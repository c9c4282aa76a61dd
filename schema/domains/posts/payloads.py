"""What the post mutations return: their payloads, and the unions of a payload with the typed
errors each mutation may answer instead (``schema.writes.results``)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.domains.posts.types import Post
from schema.writes.results import (
    ChangeErrors,
    RolledBack,
    Unauthenticated,
    ValidationError,
)


@strawberry.type
class PostPayload:
    post: Post


@strawberry.type
class CreatePostsPayload:
    posts: list[Post]


@strawberry.type
class DeletePostPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The ID of the deleted post.")


CreatePostResult = Annotated[
    PostPayload | ValidationError | Unauthenticated | RolledBack,
    strawberry.union("CreatePostResult"),
]
CreatePostsResult = Annotated[
    CreatePostsPayload | ValidationError | Unauthenticated | RolledBack,
    strawberry.union("CreatePostsResult"),
]
#: What a change to an existing post returns (the payload or why nothing changed).
ChangeResult = PostPayload | ChangeErrors
UpdatePostResult = Annotated[ChangeResult, strawberry.union("UpdatePostResult")]
PublishPostResult = Annotated[ChangeResult, strawberry.union("PublishPostResult")]
SetPostTagsResult = Annotated[ChangeResult, strawberry.union("SetPostTagsResult")]
DeletePostResult = Annotated[
    DeletePostPayload | ChangeErrors,
    strawberry.union("DeletePostResult"),
]
