"""``User.sessions``: the viewer's own signed-in sessions (``viewer { sessions }``)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import strawberry
from sqlalchemy import BigInteger, Select, bindparam, select

from db import models
from db.types import utcnow
from schema.auth.sessions import SESSION_TYPE
from schema.context import Context
from schema.reads import fetch
from schema.relay.node import to_global_id

if TYPE_CHECKING:
    from schema.domains.users.types import User

_OWNER = "inkwell_owner"


@strawberry.type(
    description="A signed-in session: one device or client that signed in, with its own "
    "refresh token. Never shows a token."
)
class Session:
    id: strawberry.ID = strawberry.field(description="Its global ID (for `signOut`).")
    device_label: str | None = strawberry.field(
        description="What the client called it when signing in, else its User-Agent."
    )
    created_at: datetime = strawberry.field(description="When it signed in.")
    last_used_at: datetime = strawberry.field(
        description="When its refresh token was last exchanged (or it signed in): not each "
        "request's time, which would cost every request a write."
    )
    expires_at: datetime = strawberry.field(
        description="When it ends unless its refresh token is exchanged before."
    )
    current: bool = strawberry.field(
        description="Whether it is the session of this request's access token."
    )


@cache
def _live_sessions() -> Select[*tuple[Any, ...]]:
    """The owner's sessions neither signed out nor expired, most recently used first (built
    once: ``loaders.shared_statement``'s reason)."""
    table = models.SignInSession
    return (
        select(table.id, table.device_label, table.created_at, table.last_used_at, table.expires_at)
        .where(
            table.user_id == bindparam(_OWNER, type_=BigInteger()),
            table.revoked_at.is_(None),
            table.expires_at > utcnow(),
        )
        .order_by(table.last_used_at.desc(), table.id.desc())
    )


async def own_sessions(ctx: Context, users: list[User]) -> list[list[Session] | None]:
    """Each user's live sessions if the user is the viewer, else ``None`` (admins included:
    a session's device and times are its owner's business). One statement for a level
    holding the viewer, none otherwise."""
    viewer = ctx.viewer
    if viewer is None or all(user.database_id != viewer.id for user in users):
        return [None] * len(users)
    rows = await fetch.rows(ctx, _live_sessions(), {_OWNER: viewer.id})
    listed = [
        Session(
            id=to_global_id(SESSION_TYPE, pk),
            device_label=label,
            created_at=created,
            last_used_at=used,
            expires_at=expires,
            current=pk == viewer.session_id,
        )
        for pk, label, created, used, expires in rows
    ]
    return [listed if user.database_id == viewer.id else None for user in users]
