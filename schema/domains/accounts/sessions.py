"""Sessions: ``refreshSession`` (refresh token rotation), ``signOut``, ``signOutEverywhere``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from db import models
from schema.auth import sessions
from schema.auth.sessions import SESSION_TYPE
from schema.context import Info
from schema.domains.accounts.payloads import (
    AuthPayload,
    RefreshTokenReused,
    SignOutPayload,
    now,
    signed_in,
)
from schema.reads import fetch
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import FieldChecks
from schema.writes.results import (
    Forbidden,
    NotFound,
    RolledBack,
    Unauthenticated,
    ValidationError,
    forbidden,
    not_found,
    sign_in_required,
)

#: Longest refresh token read (``token_urlsafe(32)`` is 43 characters).
REFRESH_TOKEN_MAX = 100
INVALID_REFRESH = "This refresh token is not valid (expired, signed out or unknown); sign in again."
REUSED = (
    "This refresh token was already used, so its session has been ended in case it was "
    "stolen; sign in again."
)


@strawberry.input
class RefreshSessionInput:
    refresh_token: str = strawberry.field(description="The session's latest refresh token.")


@strawberry.input
class SignOutInput:
    session_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Another of the viewer's sessions to end (from `viewer { sessions }`); "
        "default: the session of this request's access token.",
    )


@strawberry.input
class SignOutEverywhereInput:
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose sessions to end: admins only; default: the viewer's."
    )


RefreshSessionResult = Annotated[
    AuthPayload | ValidationError | Unauthenticated | RefreshTokenReused | RolledBack,
    strawberry.union("RefreshSessionResult"),
]
SignOutResult = Annotated[
    SignOutPayload | ValidationError | NotFound | Unauthenticated | RolledBack,
    strawberry.union("SignOutResult"),
]
SignOutEverywhereResult = Annotated[
    SignOutPayload | ValidationError | NotFound | Forbidden | Unauthenticated | RolledBack,
    strawberry.union("SignOutEverywhereResult"),
]


async def _end_reused(info: Info, reused: sessions.Reused, at: datetime) -> RefreshTokenReused:
    """End the session of a reused refresh token, and keep that although the operation fails.

    The typed error rolls the operation back, as every typed error does; the sign-out must
    outlast it. So the operation is doomed and rolled back first (what it did is dropped, as
    it would be at its end, and the locks it held are released), then the sign-out is
    committed in a transaction of its own on the same session, and the process's viewer
    cache forgets the account (others hear of it from the trigger).
    """
    ctx = info.context
    assert ctx.transaction is not None
    ctx.transaction.fail()
    await ctx.rollback()
    await ctx.run(lambda session: sessions.end_family(session, at, reused.session_id))
    await ctx.commit()
    if ctx.viewers is not None:
        ctx.viewers.forget({reused.user_id})
    viewer = ctx.viewer
    if viewer is not None and viewer.session_id == reused.session_id:
        ctx.viewer = None
    return RefreshTokenReused(message=REUSED)


def _ended(info: Info, user_id: int, session_id: int | None) -> None:
    """After sessions of ``user_id`` ended (``session_id``: just that one; ``None``: all):
    the viewer cache forgets the account at the commit, and the rest of the operation is
    anonymous if the viewer's own session was among them, as the next request would be."""
    ctx = info.context
    assert ctx.transaction is not None
    ctx.transaction.accounts.add(user_id)
    viewer = ctx.viewer
    if viewer is None or viewer.id != user_id:
        return
    if session_id is None or session_id == viewer.session_id:
        ctx.viewer = None


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        description="Exchange a refresh token for a new access token and a new refresh "
        "token (the old one is used up). Send it without an `Authorization` header, or with "
        "a valid one: an expired access token fails the request. An unknown, expired or "
        "signed-out refresh token is `Unauthenticated`; one already exchanged is "
        "`RefreshTokenReused` and ends its session (two refreshes at once with one token end "
        "it too: refresh from one place at a time).",
        extensions=[AtomicMutation()],
    )
    async def refresh_session(
        self, info: Info, input: RefreshSessionInput
    ) -> RefreshSessionResult | None:
        checks = FieldChecks()
        token = checks.text(
            "refreshToken", input.refresh_token, min_length=1, max_length=REFRESH_TOKEN_MAX
        )
        if invalid := checks.result():
            return invalid
        # No attempt limit of its own, unlike `login`: a refresh token (256 random bits)
        # cannot be guessed, and checking one costs an index lookup, no Argon2; the
        # operation rate limit (RATE_LIMIT_POINTS) still charges the client's address.
        ctx, at = info.context, now()
        outcome = await ctx.run(lambda session: sessions.rotate(session, ctx.settings, token, at))
        if outcome is None:
            return Unauthenticated(message=INVALID_REFRESH)
        if isinstance(outcome, sessions.Reused):
            return await _end_reused(info, outcome, at)
        user_id, issued = outcome
        rows = await fetch.scalars(ctx, fetch.select_where(models.User, models.User.id == user_id))
        if not rows or not rows[0].is_active:
            return Unauthenticated(message="The account of this session is deactivated.")
        return signed_in(info, rows[0], issued, at)

    @strawberry.mutation(
        description="Sign out: end the session of this request's access token (or, given "
        "`sessionId`, another of the viewer's sessions). Its refresh token is refused from "
        "now on, and its access tokens within `VIEWER_CACHE_SECONDS` at most (at once, "
        "normally). A token issued before sessions existed is `Unauthenticated` here.",
        extensions=[AtomicMutation()],
    )
    async def sign_out(self, info: Info, input: SignOutInput | None = None) -> SignOutResult | None:
        viewer = info.context.viewer
        if viewer is None:
            return sign_in_required()
        session_id = viewer.session_id
        given = input.session_id if input is not None else None
        if given is not None:
            checks = FieldChecks()
            session_id = checks.id("sessionId", given, SESSION_TYPE)
            if invalid := checks.result():
                return invalid
        if session_id is None:
            return Unauthenticated(
                message="This access token belongs to no session (it was issued before "
                "sessions existed); it stops working when it expires."
            )
        at, user_id = now(), viewer.id
        ended = await info.context.run(
            lambda session: sessions.end(session, at, user_id, only=session_id)
        )
        if given is not None and ended == 0:
            return not_found(SESSION_TYPE, given)
        _ended(info, user_id, session_id)
        return SignOutPayload(ended_sessions=ended)

    @strawberry.mutation(
        description="End every session of the viewer (this one too), or, for admins, of the "
        "account `userId` names.",
        extensions=[AtomicMutation()],
    )
    async def sign_out_everywhere(
        self, info: Info, input: SignOutEverywhereInput | None = None
    ) -> SignOutEverywhereResult | None:
        ctx = info.context
        viewer = ctx.viewer
        if viewer is None:
            return sign_in_required()
        user_id = viewer.id
        given = input.user_id if input is not None else None
        if given is not None:
            checks = FieldChecks()
            user_id = checks.id("userId", given, "User")
            if invalid := checks.result():
                return invalid
        if user_id != viewer.id:
            if not viewer.is_admin:
                return forbidden("sign out another account's sessions")
            found = await fetch.scalars(
                ctx, fetch.select_where(models.User.id, models.User.id == user_id)
            )
            if not found:
                assert given is not None
                return not_found("User", given)
        at = now()
        ended = await ctx.run(lambda session: sessions.end(session, at, user_id))
        _ended(info, user_id, None)
        return SignOutPayload(ended_sessions=ended)
