"""Accounts: ``register`` and ``login`` (each starting a session), and the account mutations
of the other modules (sessions, passwords) merged into ``AccountMutations``."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy import update
from sqlalchemy.orm import undefer
from strawberry.tools import merge_types

from db import models
from schema.auth import sessions
from schema.auth.passwords import hash_password, needs_rehash, verify_password
from schema.context import Info
from schema.domains.accounts.password import PasswordMutations
from schema.domains.accounts.payloads import AuthPayload, label_of, now, signed_in
from schema.domains.accounts.sessions import SessionMutations
from schema.engine.rate_limits import limits_of
from schema.reads import fetch
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import NAME_MAX, PASSWORD_MAX, FieldChecks
from schema.writes.on_conflict import insert_ignoring_conflicts
from schema.writes.results import EmailTaken, RolledBack, Unauthenticated, ValidationError

DEVICE_LABEL = "What to call this session in `viewer { sessions }` (default: the User-Agent)."


@strawberry.input(description="A new account.")
class RegisterInput:
    email: str
    name: str
    password: str = strawberry.field(description="At least 8 characters.")
    device_label: str | None = strawberry.field(default=None, description=DEVICE_LABEL)


@strawberry.input
class LoginInput:
    email: str
    password: str
    device_label: str | None = strawberry.field(default=None, description=DEVICE_LABEL)


RegisterResult = Annotated[
    AuthPayload | ValidationError | EmailTaken | RolledBack, strawberry.union("RegisterResult")
]
LoginResult = Annotated[
    AuthPayload | ValidationError | Unauthenticated | RolledBack, strawberry.union("LoginResult")
]


async def _start(info: Info, row: models.User, label: str | None) -> AuthPayload:
    """Start a session for ``row`` and sign the operation in to it."""
    ctx, at = info.context, now()
    issued = await ctx.run(
        lambda session: sessions.start(session, ctx.settings, row.id, label_of(info, label), at)
    )
    return signed_in(info, row, issued, at)


async def _rehash(info: Info, user_id: int, old_hash: str, password: str) -> None:
    """Store a hash made with the current parameters (they were raised since ``old_hash``).

    A plain UPDATE, not a versioned one: the hash is not part of the profile a client edits
    with ``expectedVersion``, so it must not cause their next edit a ``VersionConflict``; and
    ``password_hash = old_hash`` makes a concurrent sign-in's rehash a harmless no-op. The
    password itself is unchanged, so ``password_changed_at`` stays.
    """
    new_hash = await hash_password(password)
    User = models.User
    statement = (
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash)
        .execution_options(synchronize_session=False)
    )
    await info.context.run(lambda session: session.execute(statement))


@strawberry.type
class SignInMutations:
    @strawberry.mutation(
        description="Create a member account and sign in (a new session). An email already "
        "in use is `EmailTaken` (also when two registrations race).",
        extensions=[AtomicMutation()],
    )
    async def register(self, info: Info, input: RegisterInput) -> RegisterResult | None:
        checks = FieldChecks()
        email = checks.email("email", input.email)
        name = checks.text("name", input.name, min_length=1, max_length=NAME_MAX)
        password = checks.password("password", input.password)
        if invalid := checks.result():
            return invalid
        if (limits := limits_of(info.context)) is not None:
            await limits.charge_register(info.context)  # before Argon2 works
        # Hash before the INSERT: no row or write lock is held while Argon2 works.
        password_hash = await hash_password(password)
        # ON CONFLICT DO NOTHING: of concurrent registrations of one email, exactly one
        # inserts; the others get no row back (after waiting for the winner to commit).
        insert = (
            insert_ignoring_conflicts(info.context, models.User, ["email"])
            .values(email=email, name=name, password_hash=password_hash)
            .returning(models.User)
        )
        rows = await info.context.run(lambda session: session.scalars(insert))
        row = rows.first()
        if row is None:
            return EmailTaken(message="Another account already uses this email.", email=email)
        return await _start(info, row, input.device_label)

    @strawberry.mutation(
        description="Sign in with email and password (a new session). A wrong email or "
        "password (which are not told apart) or a deactivated account is `Unauthenticated`.",
        extensions=[AtomicMutation()],
    )
    async def login(self, info: Info, input: LoginInput) -> LoginResult | None:
        checks = FieldChecks()
        email = checks.email("email", input.email)
        checks.text("password", input.password, max_length=PASSWORD_MAX, strip=False)
        if invalid := checks.result():
            return invalid
        if (limits := limits_of(info.context)) is not None:
            # Per account and per address, before any read or Argon2 (schema.engine.rate_limits).
            await limits.charge_login(info.context, email)
        rows = await fetch.scalars(
            info.context,
            fetch.select_where(models.User, models.User.email == email).options(
                undefer(models.User.password_hash)
            ),
        )
        row = rows[0] if rows else None
        if not await verify_password(row.password_hash if row else None, input.password):
            return Unauthenticated(message="Wrong email or password.")
        assert row is not None and row.password_hash is not None
        if not row.is_active:
            return Unauthenticated(message="This account is deactivated.")
        if needs_rehash(row.password_hash):
            await _rehash(info, row.id, row.password_hash, input.password)
        return await _start(info, row, input.device_label)


AccountMutations = merge_types(
    "AccountMutations", (SignInMutations, SessionMutations, PasswordMutations)
)
