"""The viewer: who a request is from, taken from its ``Authorization: Bearer`` header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from db import models
from schema.auth.tokens import token_subject
from schema.errors import AuthenticationFailed
from schema.reads import loaders
from schema.reads.batch import load_batch

if TYPE_CHECKING:
    from schema.context import Context

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of one operation: the row's id and role when the operation began."""

    id: int
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def may_edit(self, owner_id: int) -> bool:
        """Members write their own content; admins anyone's."""
        return self.is_admin or owner_id == self.id


def bearer_token(authorization: object) -> str | None:
    """The token of an ``Authorization`` value ``Bearer <token>`` (the HTTP header, or a
    WebSocket's ``connection_init`` ``authorization``); ``None`` when there is none.

    Raises ``AuthenticationFailed`` for another scheme, an empty token or a value that is not
    a string, so a client's mistake is reported instead of silently treated as anonymous.
    Source: RFC 6750 §2.1 (the scheme is case-insensitive).
    """
    if authorization is None:
        return None
    if not isinstance(authorization, str):
        raise AuthenticationFailed("The authorization must be the string `Bearer <token>`.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("The Authorization header must be `Bearer <token>`.")
    return token.strip()


async def authenticate(ctx: Context, token: str | None) -> Viewer | None:
    """The viewer ``token`` names (``None`` for no token), checked against the database.

    For a query, the process's viewer cache answers when it remembers the account
    (``ctx.viewers``: any change to it is forgotten at once, see
    ``schema.auth.viewer_cache``). Otherwise, and always for a mutation (which reads the
    account in its own transaction) or a subscription's event, one primary-key read, through
    the user DataLoader's batch function; the row then also serves later ``author`` fields
    (``Loaders.rows``). Raises ``AuthenticationFailed`` for an invalid or expired token and
    for an account that was deleted or deactivated (its tokens stop working at once).
    """
    if token is None:
        return None
    user_id = ctx.subject = token_subject(ctx.settings, token)
    # Only a query's own read fills the cache: an event's shared read may have begun
    # before the generation is taken here.
    cache = ctx.viewers if ctx.read_only and not ctx.shared else None
    generation = 0
    if cache is not None:
        remembered = cache.get(user_id)
        if remembered is not None:
            return remembered
        generation = cache.generation
    users = loaders.by_id(ctx, models.User)
    if ctx.shared:
        # The results made for one event in a shared unit of work share the lookup too.
        row: models.User | None = await users.load(user_id)
    else:
        # The batch function itself (no future or dispatch task for one key); the row then
        # serves every by-id read of this user, whichever columns it selects.
        (row,) = await load_batch(users, [user_id])
        if row is not None:
            ctx.loaders.rows[models.User, user_id] = row
    if row is None:
        raise AuthenticationFailed("The account of this access token no longer exists.")
    if not row.is_active:
        raise AuthenticationFailed("The account of this access token is deactivated.")
    viewer = Viewer(row.id, row.role)
    if cache is not None:
        # Read on a replica: kept only if it had replayed whatever was forgotten since.
        cache.put(viewer, generation, ctx.read_as_of)
    return viewer
