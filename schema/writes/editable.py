"""The row a mutation changes: found by its global ID, checked against the viewer, locked.

Members change what they own, admins anything (``Owned``). ``find_editable`` turns every way
this can fail into the typed error the client reads (not signed in, a malformed ID, a row
that does not exist or is hidden from the viewer, one they may not change); the row comes
back locked (``load_for_write``), so the checks still hold when the operation commits.
``delete_editable`` is the whole of a delete mutation on such a row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import strawberry
from sqlalchemy import BigInteger, Select, bindparam, select

from schema.context import Context
from schema.live.events import Event
from schema.reads import fetch, loaders
from schema.reads.visibility import visible
from schema.relay.node import to_global_id
from schema.writes import viewer_check
from schema.writes.field_checks import FieldChecks
from schema.writes.flush import Target, announce, save
from schema.writes.results import MutationError, forbidden, not_found, sign_in_required

#: The parameter ``load_for_write``'s statements take the row's id in.
PK = "inkwell_pk"


@dataclass(frozen=True, slots=True)
class Owned:
    """A model whose rows belong to a user: ``owner(row)`` is that user's id (a post's or
    comment's author, a user themself). Members change what they own; admins anything."""

    entity: Any
    owner: Callable[[Any], int]


async def find_editable(
    ctx: Context,
    owned: Owned,
    global_id: strawberry.ID,
    action: str,
    *,
    checks: FieldChecks | None = None,
    field: str = "id",
) -> tuple[Any, Target] | MutationError:
    """The row of ``owned.entity`` that ``global_id`` (the input field ``field``) names, if
    the viewer may change it.

    Returns ``Unauthenticated`` for an anonymous viewer, ``ValidationError`` for a malformed
    ID (with any errors already recorded in ``checks``), ``NotFound`` for a row that does not
    exist or that the viewer may not see (a draft's existence is not revealed), and
    ``Forbidden`` when the viewer neither owns the row nor is an admin; ``action`` completes
    "You may not ...".
    """
    viewer = ctx.viewer
    if viewer is None:
        return sign_in_required()
    checks = checks or FieldChecks()
    entity = owned.entity
    pk = checks.id(field, global_id, entity.__name__)
    if invalid := checks.result():
        return invalid
    row = await load_for_write(ctx, entity, pk)
    if row is None:
        return not_found(entity.__name__, global_id)
    viewer = ctx.viewer  # as the transaction read it (``load_for_write``)
    if viewer is None or not viewer.may_edit(owned.owner(row)):
        return forbidden(action)
    return row, Target(entity, pk, to_global_id(entity.__name__, pk))


async def load_for_write(
    ctx: Context,
    entity: Any,
    pk: int,
    *,
    share: bool = False,
    columns: Sequence[Any] | None = None,
) -> Any:
    """Row ``pk`` of ``entity`` as the database has it now, locked until the operation ends,
    or ``None`` if it does not exist or the viewer may not see it. With ``columns`` (columns of
    ``entity``), only those, as a row of them, for a write that only checks the row.

    PostgreSQL locks the row (``FOR UPDATE``; ``FOR SHARE`` when ``share``, for a row the
    write only depends on), so a concurrent writer of the same row waits for this operation
    and then reads what it did: its version check reports a conflict instead of failing at
    the UPDATE, and a check made here (a post is published) still holds at commit. SQLite
    takes no row locks; its writers run one at a time, and the versioned UPDATE still
    catches a race. ``populate_existing`` replaces what the identity map holds from earlier
    in the operation, so the version compared is the current one.

    A viewer the transaction has not read yet comes in the same statement
    (``viewer_check.with_viewer``) and is confirmed from it (``viewer_check.settle``, which
    raises ``AuthenticationFailed`` for an account gone or deactivated); if its role had
    changed, the row is read again with the viewer's own visibility.
    Source: PostgreSQL docs, "Explicit Locking: Row-Level Locks"; SQLAlchemy docs,
    "Populate Existing".
    """
    while True:
        pending = ctx.viewer_pending and ctx.viewer is not None
        shape = ("load_for_write", entity, tuple(columns or ()), share, pending)
        build = partial(_for_write, ctx.viewer, entity, columns, share, pending)
        # Built once per shape and audience (``loaders.shared_statement``), the row's id and
        # the viewer's taken as parameters.
        statement = loaders.shared_statement(ctx, shape, build)
        values = {PK: pk, **(viewer_check.params(ctx) if pending else {})}
        found = await fetch.rows(ctx, statement, values)
        row = (found[0] if columns is not None else found[0][0]) if found else None
        if not pending:
            return row
        if not await viewer_check.settle(ctx, found[0][-1] if found else None):
            return row


def _for_write(
    viewer: Any, entity: Any, columns: Sequence[Any] | None, share: bool, pending: bool
) -> Select[Any]:
    """``load_for_write``'s statement (the row's id the ``PK`` parameter)."""
    statement = (
        select(*columns if columns is not None else (entity,))
        .where(entity.id == bindparam(PK, type_=BigInteger()), *visible(viewer, entity))
        .with_for_update(read=share, of=entity)
        .execution_options(populate_existing=True)
    )
    return viewer_check.with_viewer(statement) if pending else statement


async def delete_editable(
    ctx: Context,
    owned: Owned,
    global_id: strawberry.ID,
    action: str,
    *,
    events: Callable[[Any], Awaitable[Sequence[Event]]] | None = None,
) -> strawberry.ID | MutationError:
    """Delete the row ``global_id`` names if the viewer may (see ``find_editable``); the
    database's ON DELETE CASCADE removes what hangs off it. Returns the deleted row's global
    ID, or the typed error that stopped it. ``events(row)``, read before the delete, are
    announced once it succeeded."""
    found = await find_editable(ctx, owned, global_id, action)
    if isinstance(found, MutationError):
        return found
    row, target = found
    gone = await events(row) if events is not None else ()
    if failed := await save(ctx, target=target, delete=[row]):
        return failed
    announce(ctx, *gone)
    return target.global_id
