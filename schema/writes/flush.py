"""The write side of the unit of work: flushing changes, mapping what the database says about
them to typed results, keeping the operation's DataLoaders true to what was written, and
queueing the events a write announces. Finding the row a viewer may change is
``schema.writes.editable``; inserting rows concurrent transactions may insert too,
``schema.writes.on_conflict``.

Resolvers change ORM objects; ``save`` flushes them (the ORM's unit of work orders the
INSERT/UPDATE/DELETE statements) without committing: the transaction extension commits once for
the whole operation. ``eager_defaults`` makes the flush fetch server-set values (timestamps)
with RETURNING, and ``version_id_col`` makes every UPDATE and DELETE check the version the row
was read at, so a concurrent change is a ``VersionConflict``, never a lost update.
Source: SQLAlchemy docs, "Configuring a Version Counter" and "Session Basics: Flushing".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from db.errors import violates
from schema.context import Context
from schema.live.events import Event
from schema.reads import fetch, loaders
from schema.writes import viewer_check
from schema.writes.results import MutationError, VersionConflict, not_found

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
    may predate it), keep the viewer's row read in this transaction, then prime the row
    loaders with ``rows``, so the payload's fields read the written objects without another
    query. ``AtomicMutation`` calls it with none before each mutation field."""
    ctx.loaders.clear()
    viewer_check.keep_row(ctx)
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


def announce(ctx: Context, *events: Event) -> None:
    """Queue ``events`` on the operation's transaction: subscribers hear of them once it
    commits, and never if it rolls back. Raises ``RuntimeError`` outside a mutation."""
    if ctx.transaction is None:
        raise RuntimeError("events are announced by mutations, inside their transaction")
    ctx.transaction.announce(*events)
