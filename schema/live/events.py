"""What a committed change tells subscribers: a small, serialisable ``Event``.

An event names the row that changed, not its contents: each subscriber resolves the current
row itself, with its own viewer's visibility, in a unit of work of its own. It carries just
enough to route and filter it without touching the database (the post's author and, for a
deleted post, whether anonymous readers could see it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import orjson

from db import models
from db.models import PUBLISHED


class EventKind(StrEnum):
    """The kinds of change subscriptions follow (one subscription field each)."""

    POST_PUBLISHED = "post_published"
    POST_UPDATED = "post_updated"
    POST_DELETED = "post_deleted"
    COMMENT_ADDED = "comment_added"


@dataclass(frozen=True, slots=True)
class Event:
    """A change to one row, published once its transaction commits.

    ``id`` is the changed row's primary key (a post's, or for ``COMMENT_ADDED`` the
    comment's), ``post_id`` the post it concerns (the post itself for post events),
    ``author_id`` that post's author, and ``published`` whether the post was published when
    the change was made (all that is left to check visibility by once a post is deleted).
    """

    kind: EventKind
    id: int
    post_id: int
    author_id: int
    published: bool

    def encode(self) -> str:
        """The event as compact JSON (a NOTIFY payload: PostgreSQL allows under 8,000 bytes)."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def decode(cls, payload: str | bytes) -> Event:
        """The event ``encode`` wrote. Raises ``ValueError`` (or ``KeyError``/``TypeError``)
        for a payload that is not one."""
        fields: dict[str, Any] = orjson.loads(payload)
        return cls(
            kind=EventKind(fields["kind"]),
            id=int(fields["id"]),
            post_id=int(fields["post_id"]),
            author_id=int(fields["author_id"]),
            published=bool(fields["published"]),
        )


def post_event(kind: EventKind, post: models.Post) -> Event:
    """The event ``kind`` about ``post`` (as it is now: read it before deleting it)."""
    return Event(kind, post.id, post.id, post.author_id, post.status == PUBLISHED)


def comment_added(comment: models.Comment, post: models.Post) -> Event:
    """The event of ``comment`` being added to ``post``."""
    return Event(
        EventKind.COMMENT_ADDED, comment.id, post.id, post.author_id, post.status == PUBLISHED
    )
