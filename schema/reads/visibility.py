"""Who may see what: the SQL conditions that hide drafts (and comments on them, and tags only
drafts carry) from readers who are neither their author nor an admin.

Every read path applies them in SQL (root lists, nested connections, their counts, lookups by
id through the DataLoaders), so a hidden row is never fetched at all: counts agree with pages,
and ``node(id:)`` of a hidden draft is null, as for a row that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, BindParameter, ColumnElement, bindparam, exists, or_, select

from db import models
from db.models import PUBLISHED

if TYPE_CHECKING:
    from schema.auth.viewer import Viewer


#: The named parameter holding a member's id in the conditions: a statement built for one
#: member serves every member (``loaders.shared_statement`` keys statements by ``audience``,
#: not by viewer), and ``fetch`` binds the operation's own viewer each time it runs one
#: (``viewer_params``). As a literal, each member had statements of their own: about 50 KB
#: each with its compiled form, some ten per member, up to the cache's bound (issue 19).
VIEWER = "inkwell_viewer"


def viewer_id(viewer: Viewer) -> BindParameter[int]:
    """``viewer``'s id as the ``VIEWER`` parameter, its value given (a statement run without
    ``viewer_params`` still reads as this viewer's)."""
    return bindparam(VIEWER, viewer.id, type_=BigInteger())


def audience(viewer: Viewer | None) -> str:
    """Whose conditions ``visible`` writes for ``viewer``, apart from the ``VIEWER``
    parameter: ``"anonymous"``, ``"admin"`` (no condition) or ``"member"`` (any other role)."""
    if viewer is None:
        return "anonymous"
    return "admin" if viewer.is_admin else "member"


def viewer_params(viewer: Viewer | None) -> dict[str, int]:
    """The ``VIEWER`` parameter for ``viewer``'s conditions (none for anonymous readers and
    admins, whose conditions have none)."""
    return {VIEWER: viewer.id} if viewer is not None and not viewer.is_admin else {}


def visible_posts(viewer: Viewer | None) -> list[ColumnElement[bool]]:
    """Conditions on ``posts`` for what ``viewer`` may see: published posts, and their own
    drafts (the id a ``VIEWER`` parameter); admins see everything (no condition)."""
    Post = models.Post
    if viewer is None:
        return [Post.status == PUBLISHED]
    if viewer.is_admin:
        return []
    return [or_(Post.status == PUBLISHED, Post.author_id == viewer_id(viewer))]


def visible_comments(viewer: Viewer | None) -> list[ColumnElement[bool]]:
    """Conditions on ``comments``: a comment is visible when its post is."""
    conditions = visible_posts(viewer)
    if not conditions:
        return []
    post = models.Post
    return [exists(select(post.id).where(post.id == models.Comment.post_id, *conditions))]


def visible_tags(viewer: Viewer | None) -> list[ColumnElement[bool]]:
    """Conditions on ``tags``: a tag is visible when a post the viewer may see carries it (a
    tag's name, made up for a draft, can say as much as the draft)."""
    conditions = visible_posts(viewer)
    if not conditions:
        return []
    post, link = models.Post, models.post_tags
    carried = (
        select(link.c.tag_id)
        .join(post, post.id == link.c.post_id)
        .where(link.c.tag_id == models.Tag.id, *conditions)
    )
    return [exists(carried)]


def visible(viewer: Viewer | None, entity: Any) -> list[ColumnElement[bool]]:
    """The conditions for rows of ``entity`` (none for users: all are public)."""
    if entity is models.Post:
        return visible_posts(viewer)
    if entity is models.Comment:
        return visible_comments(viewer)
    if entity is models.Tag:
        return visible_tags(viewer)
    return []


def decided_by(entity: Any) -> tuple[Any, ...]:
    """The tables whose rows decide which rows of ``entity`` a reader may see, besides its
    own (what ``visible`` reads): a change to them can change a response listing ``entity``.
    """
    if entity is models.Comment:
        return (models.Post.__table__,)
    if entity is models.Tag:
        return (models.post_tags, models.Post.__table__)
    return ()


def is_public(entity: Any) -> bool:
    """True when every viewer may see every row of ``entity`` (``visible`` adds nothing)."""
    return entity is models.User


def may_see_email(viewer: Viewer | None, user_id: int) -> bool:
    """A user's email is visible only to that user and to admins."""
    return viewer is not None and viewer.may_edit(user_id)
