"""The write side of the unit of work: flushing changes, mapping what the database says about
them to typed results, and keeping the operation's DataLoaders true to what was written.

Resolvers change ORM objects; ``save`` flushes them (the ORM's unit of work orders the
INSERT/UPDATE/DELETE statements) without committing: the transaction extension commits once for
the whole operation. ``eager_defaults`` makes the flush fetch server-set values (timestamps)
with RETURNING, and ``version_id_col`` makes every UPDATE and DELETE check the version the row
was read at, so a concurrent change is a ``VersionConflict``, never a lost update.
Source: SQLAlchemy docs, "Configuring a Version Counter" and "Session Basics: Flushing".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import Insert, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from db import models
from db.errors import violates
from schema.context import Context
from schema.live.events import Event
from schema.reads import fetch, loaders
from schema.reads.visibility import visible
from schema.relay.node import to_global_id
from schema.writes.field_checks import FieldChecks
from schema.writes.results import (
    MutationError,
    VersionConflict,
    forbidden,
    not_found,
    sign_in_required,
)

#: constraint name -> the typed error its violation means (built only when it happens).
ConstraintErrors = Mapping[str, Callable[[], MutationError]]


@dataclass(frozen=True, slots=True)
class Target:
    """The row a write is about (``entity``'s row ``pk``, known to the client as
    ``global_id``), for reporting what a failed version check found."""

    entity: Any
    pk: int
    global_id: strawberry.ID


async def save(
    ctx: Context,
    *,
    target: Target | None = None,
    add: Sequence[Any] = (),
    delete: Sequence[Any] = (),
    prime: Sequence[Any] = (),
    constraint_errors: ConstraintErrors | None = None,
) -> MutationError | None:
    """Add ``add`` to the session, mark ``delete`` deleted, and flush every pending change.

    Returns ``None`` when the changes were written, after which the DataLoaders are refreshed
    (``written``) and primed with ``prime``.

    A version check that matched no row (``target`` changed or went since it was read) rolls
    the operation back and returns ``VersionConflict`` with the version now stored, or
    ``NotFound`` if the row is gone. A violation of a unique or foreign key constraint named in
    ``constraint_errors`` (the race a check before the write cannot close) rolls back and
    returns that typed error. Raises ``TransactionConflict`` for a serialization failure
    or deadlock (see ``AtomicMutation``); anything else propagates (and is masked).
    """

    async def flush(session: Any) -> None:
        session.add_all(add)
        for row in delete:
            await session.delete(row)
        await session.flush()
        # Values the flush could not bring back with RETURNING (an attribute set to an SQL
        # expression, such as now()) are expired: read them now, so the payload never
        # triggers a lazy load (which asyncio forbids).
        for row in prime:
            if expired := inspect(row).expired_attributes:
                await session.refresh(row, list(expired))

    try:
        await ctx.run(flush)
    except StaleDataError:
        if target is None:
            raise
        await _abandon(ctx)
        return await _version_conflict(ctx, target)
    except DBAPIError as exc:
        if (error := _violated(exc, constraint_errors)) is None:
            raise
        await _abandon(ctx)
        return error
    written(ctx, *prime)
    return None


def _violated(exc: DBAPIError, constraint_errors: ConstraintErrors | None) -> MutationError | None:
    """The typed error ``constraint_errors`` gives for the constraint ``exc`` violates."""
    for constraint, error in (constraint_errors or {}).items():
        if violates(exc, constraint):
            return error()
    return None


def stale(row: Any, expected_version: int, target: Target) -> VersionConflict | None:
    """``VersionConflict`` when the client's ``expected_version`` is not ``row``'s version."""
    if row.version == expected_version:
        return None
    return VersionConflict(
        message=f"This was changed since version {expected_version} (it is at version "
        f"{row.version}); reload and retry.",
        node_id=target.global_id,
        current_version=row.version,
    )


async def _version_conflict(ctx: Context, target: Target) -> MutationError:
    entity = target.entity
    current = await fetch.scalars(ctx, select(entity.version).where(entity.id == target.pk))
    if not current:
        return not_found(entity.__name__, target.global_id)
    return VersionConflict(
        message="This was changed by someone else meanwhile; reload and retry.",
        node_id=target.global_id,
        current_version=current[0],
    )


async def _abandon(ctx: Context) -> None:
    """After a failed flush the session must be rolled back before it can run anything, and
    the operation can no longer commit."""
    if ctx.transaction is not None:
        ctx.transaction.fail()
    await ctx.rollback()


def written(ctx: Context, *rows: Any) -> None:
    """Keep the DataLoaders true after a write: drop every cached page, count and row (they
    may predate it), then prime the row loaders with ``rows``, so the payload's fields read
    the written objects without another query."""
    ctx.loaders.clear()
    for row in rows:
        loaders.by_id(ctx, type(row)).prime(row.id, row)


async def insert_rows(
    ctx: Context,
    entity: Any,
    values: Sequence[dict[str, Any]],
    *,
    constraint_errors: ConstraintErrors | None = None,
) -> list[Any] | MutationError:
    """Insert rows of ``entity`` (one dict of column values each) in one multi-row
    ``INSERT ... RETURNING`` and return them as objects of the session, in the order given,
    or the typed error ``constraint_errors`` names for a violated constraint (as ``save``).

    The ORM's flush of new objects batches only on databases where it can match RETURNING rows
    to parameter sets: PostgreSQL, via ``sort_by_parameter_order``. On SQLite it would fall
    back to one INSERT per row, so there the rows come back unsorted and are put in order by
    id: SQLite inserts a multi-row VALUES in order, and AUTOINCREMENT gives each row a higher
    id than the one before.
    Source: SQLAlchemy docs, "ORM Bulk INSERT Statements" and "Correlating RETURNING rows to
    parameter sets" (insertmanyvalues), and "Sending NULL values in ORM bulk INSERT".
    """
    sqlite = ctx.settings.is_sqlite
    # render_nulls: a None is sent as NULL instead of leaving the column out, so rows with
    # and without a value (a draft's published_at) keep one shape and one statement.
    statement = (
        insert(entity)
        .returning(entity, sort_by_parameter_order=not sqlite)
        .execution_options(render_nulls=True)
    )
    try:
        rows = await ctx.run(lambda session: session.scalars(statement, list(values)))
    except DBAPIError as exc:
        if (error := _violated(exc, constraint_errors)) is None:
            raise
        await _abandon(ctx)
        return error
    objects = list(rows.all())
    return sorted(objects, key=lambda row: row.id) if sqlite else objects


def insert_ignoring_conflicts(ctx: Context, table: Any, index_elements: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` for the session's database:
    a row that a concurrent transaction inserted first is skipped, not an error (PostgreSQL
    waits for that transaction to finish, so the row is there to read afterwards)."""
    dialect = sqlite if ctx.settings.is_sqlite else postgresql
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))


async def ensure_tags(ctx: Context, names: Iterable[str]) -> dict[str, models.Tag]:
    """The tags named ``names`` (normalised), created if new: two statements whatever the
    number of names, and safe against concurrent creation of the same tag (both callers get
    the one row).

    Names are inserted in sorted order: two transactions inserting overlapping sets then
    take the unique index's entries in the same order and cannot deadlock.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    Tag = models.Tag
    insert = insert_ignoring_conflicts(ctx, Tag, ["name"]).values([{"name": n} for n in wanted])

    async def work(session: Any) -> list[models.Tag]:
        await session.execute(insert)
        return list((await session.scalars(select(Tag).where(Tag.name.in_(wanted)))).all())

    tags = await ctx.run(work)
    return {tag.name: tag for tag in tags}


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
    if not viewer.may_edit(owned.owner(row)):
        return forbidden(action)
    return row, Target(entity, pk, to_global_id(entity.__name__, pk))


async def load_for_write(ctx: Context, entity: Any, pk: int, *, share: bool = False) -> Any:
    """Row ``pk`` of ``entity`` as the database has it now, locked until the operation ends,
    or ``None`` if it does not exist or the viewer may not see it.

    PostgreSQL locks the row (``FOR UPDATE``; ``FOR SHARE`` when ``share``, for a row the
    write only depends on), so a concurrent writer of the same row waits for this operation
    and then reads what it did: its version check reports a conflict instead of failing at
    the UPDATE, and a check made here (a post is published) still holds at commit. SQLite
    takes no row locks; its writers run one at a time, and the versioned UPDATE still
    catches a race. ``populate_existing`` replaces what the identity map holds from earlier
    in the operation, so the version compared is the current one.
    Source: PostgreSQL docs, "Explicit Locking: Row-Level Locks"; SQLAlchemy docs,
    "Populate Existing".
    """
    statement = (
        select(entity)
        .where(entity.id == pk, *visible(ctx.viewer, entity))
        .with_for_update(read=share, of=entity)
        .execution_options(populate_existing=True)
    )
    rows = await fetch.scalars(ctx, statement)
    return rows[0] if rows else None


def announce(ctx: Context, *events: Event) -> None:
    """Queue ``events`` on the operation's transaction: subscribers hear of them once it
    commits, and never if it rolls back. Raises ``RuntimeError`` outside a mutation."""
    if ctx.transaction is None:
        raise RuntimeError("events are announced by mutations, inside their transaction")
    ctx.transaction.announce(*events)


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
