"""What a committed change tells subscribers: a small ``Event``, one row of the outbox.

An event names the row that changed, not its contents: each subscriber resolves the current
row itself, with its own viewer's visibility, in a unit of work of its own. It carries just
enough to route and filter it without touching the database (the post's author and, for a
deleted post, whether anonymous readers could see it), and, once written to the outbox
(``schema.live.outbox``), its event id: its place in commit order.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    #: Not a subscription's: which tables a commit wrote to (``rows_changed``), for the
    #: response caches of every process (``schema.engine.response_cache``).
    ROWS_CHANGED = "rows_changed"


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


#: Each table's bit in a ``ROWS_CHANGED`` event, for good: a new table takes the next bit,
#: and none is ever reused, so processes running different versions read events alike.
#: A table without one sets ``ANY_TABLE``, which stands for every table.
TABLE_BITS = {
    "users": 0,
    "posts": 1,
    "comments": 2,
    "tags": 3,
    "post_tags": 4,
    "events": 5,
    # Written by every sign-in and refresh, read by no cached (anonymous) response: without
    # bits of their own, each sign-in would make every cached response stale.
    "sign_in_sessions": 6,
    "rotated_refresh_tokens": 7,
}
ANY_TABLE = 62


def rows_changed(tables: Iterable[str]) -> Event:
    """The event saying a commit wrote to ``tables`` (names): their bits (``TABLE_BITS``)
    in its ``id``, which stays a positive 64-bit integer."""
    bits = 0
    for table in tables:
        bits |= 1 << TABLE_BITS.get(table, ANY_TABLE)
    return Event(EventKind.ROWS_CHANGED, bits, 0, 0, False)


def changed_tables(event: Event, known: Iterable[str]) -> set[str]:
    """The tables among ``known`` (names) a ``ROWS_CHANGED`` event says were written."""
    if event.id >> ANY_TABLE & 1:
        return set(known)
    return {t for t in known if event.id >> TABLE_BITS.get(t, ANY_TABLE) & 1}
