"""Typed mutation errors: the expected failures a UI renders, as members of result unions.

Each mutation returns a union of its success payload and the errors it can end in, so a client
selects ``... on VersionConflict { currentVersion }`` and the schema documents which failures
exist. Unexpected failures stay GraphQL errors, masked. Every typed error implements
``MutationError``, so ``... on MutationError { message }`` catches all of them.
Source: Strawberry docs, "Dealing with errors" (expected errors as union types).
"""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An expected reason a mutation did not apply.")
class MutationError:
    message: str = strawberry.field(description="A sentence a UI can show as it is.")


@strawberry.type(description="One invalid input field.")
class FieldError:
    field: str = strawberry.field(
        description="Path of the input field, dot-separated, with list indexes "
        "(e.g. `title`, `posts.3.tagNames.0`)."
    )
    message: str


@strawberry.type(description="The input is invalid; nothing was changed.")
class ValidationError(MutationError):
    field_errors: list[FieldError]

    @classmethod
    def of(cls, errors: list[FieldError]) -> ValidationError:
        fields = ", ".join(error.field for error in errors)
        return cls(message=f"Invalid input: {fields}.", field_errors=errors)


# Error types name the object they refer to `nodeId`, never `id`: normalized client caches
# (Relay's store above all, which keys every record by `id` whatever its type) would take an
# error's `id` for the object's own and re-type the cached object as the error.
@strawberry.type(description="No such object, or one the viewer may not see.")
class NotFound(MutationError):
    node_id: strawberry.ID = strawberry.field(description="The global ID that was looked for.")


@strawberry.type(description="The viewer may not do this to this object.")
class Forbidden(MutationError):
    pass


@strawberry.type(description="This mutation needs a signed-in viewer, or the sign-in failed.")
class Unauthenticated(MutationError):
    pass


@strawberry.type(description="Another account already uses this email address.")
class EmailTaken(MutationError):
    email: str


@strawberry.type(
    description="The object changed since the client read it (expectedVersion is stale, or a "
    "concurrent update won); re-read it and apply the change again."
)
class VersionConflict(MutationError):
    node_id: strawberry.ID = strawberry.field(description="The global ID of the object.")
    current_version: int


@strawberry.type(
    description="Not applied: another mutation field of this operation failed, so the whole "
    "operation was rolled back (it is applied completely or not at all). The field either "
    "did not run, or ran and its result was withdrawn."
)
class RolledBack(MutationError):
    pass


def rolled_back(*, withdrawn: bool = False) -> RolledBack:
    """``RolledBack`` for a field that ran before the operation failed (``withdrawn``), or
    one that did not run because it came after the failure."""
    if withdrawn:
        return RolledBack(
            message="Rolled back: another mutation in this operation failed, so this change "
            "was not kept."
        )
    return RolledBack(
        message="Not run: an earlier mutation in this operation failed, so the whole "
        "operation was rolled back."
    )


def sign_in_required() -> Unauthenticated:
    return Unauthenticated(message="Sign in to do this.")


def account_gone() -> Unauthenticated:
    """The viewer's account was deleted while the operation ran (a foreign key to it
    failed)."""
    return Unauthenticated(message="Your account no longer exists.")


def forbidden(what: str) -> Forbidden:
    return Forbidden(message=f"You may not {what}.")


def not_found(type_name: str, global_id: strawberry.ID) -> NotFound:
    return NotFound(message=f"No {type_name} has this ID.", node_id=global_id)


#: The typed errors of a mutation that changes or deletes an existing row: its result is the
#: union of its payload and these, in this order.
ChangeErrors = (
    ValidationError | NotFound | Forbidden | Unauthenticated | VersionConflict | RolledBack
)

ERROR_TYPES = [
    ValidationError,
    NotFound,
    Forbidden,
    Unauthenticated,
    EmailTaken,
    VersionConflict,
    RolledBack,
]
