"""Mutations on users: update, deactivate, delete (registration is in
``schema.domains.accounts.mutations``)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from sqlalchemy import select

from db import models
from schema.auth.viewer import Viewer
from schema.context import Info
from schema.domains.users.types import Role, User
from schema.live.events import Event, EventKind
from schema.reads import fetch
from schema.relay.node import parse_id
from schema.writes import editable, flush
from schema.writes.boundary import AtomicMutation
from schema.writes.field_checks import BIO_MAX, NAME_MAX, FieldChecks, given
from schema.writes.results import (
    ChangeErrors,
    EmailTaken,
    MutationError,
    forbidden,
)

EMAIL_CONSTRAINT = "uq_users_email"


@strawberry.input(description="Changes to a user; fields left out keep their value.")
class UpdateUserInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The `version` the change was based on (see `VersionConflict`)."
    )
    name: str | None = strawberry.UNSET
    bio: str | None = strawberry.field(
        default=strawberry.UNSET, description="Up to 2,000 characters; null or empty clears it."
    )
    email: str | None = strawberry.UNSET
    role: Role | None = strawberry.field(default=strawberry.UNSET, description="Admins only.")


@strawberry.input
class UserIdInput:
    id: strawberry.ID


@strawberry.type
class UserPayload:
    user: User


@strawberry.type
class DeleteUserPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The ID of the deleted user.")


_Changed = UserPayload | ChangeErrors
UpdateUserResult = Annotated[_Changed | EmailTaken, strawberry.union("UpdateUserResult")]
DeactivateUserResult = Annotated[_Changed, strawberry.union("DeactivateUserResult")]
DeleteUserResult = Annotated[
    DeleteUserPayload | ChangeErrors,
    strawberry.union("DeleteUserResult"),
]


#: A user's account belongs to that user.
OWNED_USERS = editable.Owned(models.User, lambda row: row.id)


def _account_changed(
    info: Info, user_id: int, row: models.User | None, *, access: bool = True
) -> None:
    """After a change to account ``user_id`` (``row`` as it now is, ``None``: deleted): if
    it changed what the account may do (``access``: its role, status or existence), have the
    viewer cache forget it once the transaction commits; and keep the operation's viewer
    true if it is their own account: the rest of the operation runs as the account now is
    (deleted or deactivated: anonymous; a new role: that role), as the next request would."""
    ctx = info.context
    assert ctx.transaction is not None
    if access:
        ctx.transaction.accounts.add(user_id)
    viewer = ctx.viewer
    if viewer is None or viewer.id != user_id:
        return
    if row is None or not row.is_active:
        ctx.viewer = None
    else:  # the same session goes on
        ctx.viewer = Viewer(row.id, row.role, viewer.session_id)


def _email_taken(email: str) -> EmailTaken:
    return EmailTaken(message="Another account already uses this email.", email=email)


@strawberry.type
class UserMutations:
    @strawberry.mutation(
        description="Change a user's profile (the user or an admin; `role` admins only).",
        extensions=[AtomicMutation()],
    )
    async def update_user(self, info: Info, input: UpdateUserInput) -> UpdateUserResult | None:
        checks = FieldChecks()
        name = email = bio = None
        if given(input.name):
            name = checks.text("name", input.name, min_length=1, max_length=NAME_MAX)
        if given(input.bio) and input.bio is not None:
            bio = checks.text("bio", input.bio, max_length=BIO_MAX) or None
        if given(input.email):
            email = checks.email("email", input.email or "")
        if given(input.role) and input.role is None:
            checks.add("role", "Must not be null.")
        elif given(input.role) and input.role is Role.EDITOR:
            checks.add("role", "EDITOR is read-only here: Inkwell assigns MEMBER or ADMIN.")
        found = await editable.find_editable(
            info.context, OWNED_USERS, input.id, "edit this user", checks=checks
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        viewer = info.context.viewer
        assert viewer is not None
        role = input.role.value if given(input.role) and input.role is not None else row.role
        if role != row.role and not viewer.is_admin:
            return forbidden("change roles")
        if conflict := flush.stale(row, input.expected_version, target):
            return conflict
        if email is not None and email != row.email:
            taken = await fetch.scalars(
                info.context, fetch.select_where(models.User.id, models.User.email == email)
            )
            if taken:
                return _email_taken(email)
            row.email = email
        role_changed = role != row.role
        row.role = role
        if name is not None:
            row.name = name
        if given(input.bio):
            row.bio = bio
        # The SELECT above makes a taken email a typed result in the common case; the unique
        # constraint decides a race between two updates (or a registration) to one address.
        failed = await flush.save(
            info.context,
            target=target,
            prime=[row],
            constraint_errors={EMAIL_CONSTRAINT: lambda: _email_taken(email or "")},
        )
        if failed:
            return failed  # type: ignore[return-value]
        _account_changed(info, row.id, row, access=role_changed)
        return UserPayload(user=User.from_row(row))

    @strawberry.mutation(
        description="Deactivate an account (the user or an admin): it can no longer sign in, "
        "and its tokens stop working at once.",
        extensions=[AtomicMutation()],
    )
    async def deactivate_user(self, info: Info, input: UserIdInput) -> DeactivateUserResult | None:
        found = await editable.find_editable(
            info.context, OWNED_USERS, input.id, "deactivate this user"
        )
        if isinstance(found, MutationError):
            return found  # type: ignore[return-value]
        row, target = found
        if row.is_active:
            row.is_active = False
        if failed := await flush.save(info.context, target=target, prime=[row]):
            return failed  # type: ignore[return-value]
        _account_changed(info, row.id, row)
        return UserPayload(user=User.from_row(row))

    @strawberry.mutation(
        description="Delete an account with all its posts and comments (the user or an admin).",
        extensions=[AtomicMutation()],
    )
    async def delete_user(self, info: Info, input: UserIdInput) -> DeleteUserResult | None:
        ctx = info.context

        async def posts_deleted(user: models.User) -> list[Event]:
            # The cascade deletes the user's posts in the database: tell their subscribers.
            post = models.Post
            mine = select(post.id, post.status).where(post.author_id == user.id)
            rows = await fetch.rows(ctx, mine.order_by(post.id))
            kind = EventKind.POST_DELETED
            return [Event(kind, pk, pk, user.id, status == models.PUBLISHED) for pk, status in rows]

        deleted = await editable.delete_editable(
            ctx, OWNED_USERS, input.id, "delete this user", events=posts_deleted
        )
        if isinstance(deleted, MutationError):
            return deleted  # type: ignore[return-value]
        _account_changed(info, parse_id(deleted, "User"), None)
        return DeleteUserPayload(deleted_id=deleted)
