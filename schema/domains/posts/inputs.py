"""What the post mutations take: their input types."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new post; a draft unless `publish` is true.")
class CreatePostInput:
    title: str = strawberry.field(description="1-200 characters.")
    content: str = strawberry.field(default="", description="Up to 100,000 characters.")
    tag_names: list[str] = strawberry.field(
        default_factory=list,
        description="Up to 10 tag names (trimmed, lower-cased; new tags are created).",
    )
    publish: bool = False


@strawberry.input(description="Up to 100 new posts, created in one statement per table.")
class CreatePostsInput:
    posts: list[CreatePostInput]


@strawberry.input(description="Changes to a post; fields left out keep their value.")
class UpdatePostInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The `version` the change was based on; if the post has moved on, the "
        "result is `VersionConflict` and nothing changes."
    )
    title: str | None = strawberry.UNSET
    content: str | None = strawberry.UNSET


@strawberry.input(description="The post a mutation is about.")
class PostIdInput:
    id: strawberry.ID


@strawberry.input(description="Replace a post's tags with these (an empty list removes all).")
class SetPostTagsInput:
    post_id: strawberry.ID
    tag_names: list[str]
