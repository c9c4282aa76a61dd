"""``changePassword``: a new password, every other session ended, this one renewed."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from db import models
from schema.auth import sessions
from schema.auth.passwords import hash_password, verify_password
from schema.context import Info
from schema.domains.accounts.payloads import AuthPayload, label_of, now, signed_in
from schema.engine.rate_limits import limits_of
from schema.reads import fetch
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import PASSWORD_MAX, FieldChecks
from schema.writes.results import (
    FieldError,
    RolledBack,
    Unauthenticated,
    ValidationError,
    account_gone,
    sign_in_required,
)


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str = strawberry.field(description="At least 8 characters.")


ChangePasswordResult = Annotated[
    AuthPayload | ValidationError | Unauthenticated | RolledBack,
    strawberry.union("ChangePasswordResult"),
]


def _wrong(message: str) -> ValidationError:
    return ValidationError.of([FieldError(field="currentPassword", message=message)])


@strawberry.type
class PasswordMutations:
    @strawberry.mutation(
        description="Change the viewer's password (the same rules as `register`). Every "
        "other session of the account ends, and every access token issued before is "
        "refused; this session goes on with the new tokens returned here (its earlier "
        "access and refresh tokens stop working). A wrong `currentPassword` is a "
        "`ValidationError` on that field; attempts count against the account's and the "
        "address's `login` limits.",
        extensions=[AtomicMutation()],
    )
    async def change_password(
        self, info: Info, input: ChangePasswordInput
    ) -> ChangePasswordResult | None:
        ctx = info.context
        viewer = ctx.viewer
        if viewer is None:
            return sign_in_required()
        checks = FieldChecks()
        checks.text("currentPassword", input.current_password, max_length=PASSWORD_MAX, strip=False)
        password = checks.password("newPassword", input.new_password)
        if invalid := checks.result():
            return invalid
        user = models.User
        rows = await fetch.scalars(
            ctx, fetch.select_where(user, user.id == viewer.id).options(undefer(user.password_hash))
        )
        if not rows:
            return account_gone()
        row = rows[0]
        if (limits := limits_of(ctx)) is not None:
            # A guess at the password costs what a login costs, before Argon2 works.
            await limits.charge_login(ctx, row.email)
        if not await verify_password(row.password_hash, input.current_password):
            return _wrong("Wrong password.")
        # Hashed before any write: no row lock is held while Argon2 works.
        password_hash = await hash_password(password)
        at, session_id = now(), viewer.session_id

        async def change(session: AsyncSession) -> sessions.Issued | None:
            if not await sessions.set_password(
                session, row.id, password_hash, at, row.password_hash
            ):
                return None
            await sessions.end(session, at, row.id, keep=session_id)
            issued = None
            if session_id is not None:
                issued = await sessions.renew(session, ctx.settings, session_id, at)
            if issued is None:  # a token of no session, or its session ended meanwhile
                issued = await sessions.start(
                    session, ctx.settings, row.id, label_of(info, None), at
                )
            return issued

        issued = await ctx.run(change)
        if issued is None:
            return _wrong("The password was changed meanwhile; sign in again.")
        assert ctx.transaction is not None
        ctx.transaction.accounts.add(row.id)
        return signed_in(info, row, issued, at)
