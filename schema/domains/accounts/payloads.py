"""What the account mutations answer: the signed-in payload with its tokens, and their errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from schema.auth.sessions import SESSION_TYPE, Issued, device_label
from schema.auth.tokens import issue_token
from schema.auth.viewer import Viewer
from schema.context import Info
from schema.relay.node import to_global_id
from schema.relay.node_loading import to_node
from schema.writes.results import MutationError

if TYPE_CHECKING:
    from schema.domains.users.types import User

LazyUser = Annotated["User", strawberry.lazy("schema.domains.users.types")]


@strawberry.type(
    description="A signed-in session: send `Authorization: Bearer <token>` with each request, "
    "and before `expiresAt` exchange `refreshToken` for new tokens with `refreshSession`."
)
class AuthPayload:
    token: str = strawberry.field(description="The access token (a JWT), short-lived.")
    expires_at: datetime = strawberry.field(description="When the access token stops working.")
    refresh_token: str = strawberry.field(
        description="The session's refresh token: secret, for `refreshSession` only, and "
        "usable once (each refresh returns the next one)."
    )
    refresh_token_expires_at: datetime = strawberry.field(
        description="When the refresh token stops working (and the session ends) unless it "
        "is exchanged before."
    )
    session_id: strawberry.ID = strawberry.field(
        description="The session's ID, as `viewer { sessions { id } }` lists it."
    )
    viewer: LazyUser = strawberry.field(description="The signed-in user.")


@strawberry.type(description="The sessions a sign-out ended.")
class SignOutPayload:
    ended_sessions: int = strawberry.field(
        description="How many sessions ended (their tokens stop working)."
    )


@strawberry.type(
    description="This refresh token was already exchanged: someone else holds this session's "
    "tokens (or a client refreshed twice at once), so the whole session was ended; sign in "
    "again. Unlike other errors, that sign-out is kept although the operation is rolled back."
)
class RefreshTokenReused(MutationError):
    pass


def now() -> datetime:
    """The time of a change: UTC, with microseconds (``schema.auth.tokens``)."""
    return datetime.now(UTC)


def label_of(info: Info, given: str | None) -> str | None:
    """The device label of a new session: ``given``, else the request's User-Agent."""
    request = info.context.request
    headers = getattr(request, "headers", None)
    return device_label(given, headers.get("user-agent") if headers is not None else None)


def signed_in(info: Info, row: models.User, issued: Issued, at: datetime) -> AuthPayload:
    """The payload for ``row`` signed in to session ``issued`` (its refresh token issued
    ``at``). The rest of the operation runs as that user in that session too (the payload
    shows their email; a later field may, say, create their first post)."""
    info.context.viewer = Viewer(row.id, row.role, issued.session_id)
    access = issue_token(
        info.context.settings,
        row.id,
        at,
        session_id=issued.session_id,
        not_after=issued.expires_at,
    )
    return AuthPayload(
        token=access.token,
        expires_at=access.expires_at,
        refresh_token=issued.refresh_token,
        refresh_token_expires_at=issued.expires_at,
        session_id=session_global_id(issued.session_id),
        viewer=to_node(models.User)(row),
    )


def session_global_id(session_id: int) -> strawberry.ID:
    """The global ID of session ``session_id``."""
    return to_global_id(SESSION_TYPE, session_id)
