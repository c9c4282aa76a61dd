"""What a committed change tells subscribers: a small ``Event``, one row of the outbox.

An event names the row that changed, not its contents: each subscriber resolves the current
row itself, with its own viewer's visibility, in a unit of work of its own. It carries just
enough to route and filter it without touching the database (the post's author and, for a
deleted post, whether anonymous readers could see it), and, once written to the outbox
(``schema.live.outbox``), its event id: its place in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
    ``event_id`` is its outbox row's id, set when the transaction writes it (0 before):
    event ids grow in commit order, so a subscriber resumes after the last one it saw.
    """

    kind: EventKind
    id: int
    post_id: int
    author_id: int
    published: bool
    event_id: int = 0


def post_event(kind: EventKind, post: models.Post) -> Event:
    """The event ``kind`` about ``post`` (as it is now: read it before deleting it)."""
    return Event(kind, post.id, post.id, post.author_id, post.status == PUBLISHED)


def comment_added(comment: models.Comment, post: models.Post) -> Event:
    """The event of ``comment`` being added to ``post``."""
    return Event(
        EventKind.COMMENT_ADDED, comment.id, post.id, post.author_id, post.status == PUBLISHED
    )
