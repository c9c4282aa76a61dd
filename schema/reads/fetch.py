"""Running reads under the operation's session: root pages and counts, and the id clauses and
windowed statements the DataLoaders batch with.

Every statement goes through ``rows``/``scalars``, which hold the context's session lock for the
whole execute-and-buffer, so concurrent resolvers never share the session at once. A read-only
operation on PostgreSQL runs them on the driver (``db.reader``): the same SQL, rows with the
mapped objects' attribute names instead of ORM instances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Result,
    Select,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.orm import aliased

from db import reader
from schema.context import Context
from schema.reads.keyset import PageArgs, order_by, seek
from schema.reads.visibility import viewer_params

#: The type of a bound array of ids (made once: a type object per statement costs more than
#: the rest of the clause).
_BIGINT_ARRAY = ARRAY(BigInteger())

#: A join for entities reached through an association table: (target, ON clause).
Join = tuple[Any, ColumnElement[bool]]


async def rows(
    ctx: Context, statement: Select[*tuple[Any, ...]], params: dict[str, Any] | None = None
) -> Sequence[Any]:
    """Execute ``statement`` (with ``params`` for its named parameters, e.g. ``KEYS``, and the
    viewer's own, ``visibility.VIEWER``) and return all result rows (tuples), buffered."""
    params = _with_viewer(ctx, params)
    if ctx.reads_on_driver:
        return await ctx.read(statement, params)
    return (await _execute(ctx, statement, params)).all()


async def scalars(
    ctx: Context, statement: Select[Any], params: dict[str, Any] | None = None
) -> Sequence[Any]:
    """Execute ``statement`` and return the first column of every row, buffered."""
    if ctx.reads_on_driver:
        return [row[0] for row in await rows(ctx, statement, params)]
    return (await _execute(ctx, statement, _with_viewer(ctx, params))).scalars().all()


def _with_viewer(ctx: Context, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """``params`` and the operation's viewer's id: a statement shared by every member
    (``loaders.shared_statement``) reads as this one (a parameter a statement does not
    have is ignored)."""
    own = viewer_params(ctx.viewer)
    return {**params, **own} if params and own else own or params


async def _execute(
    ctx: Context, statement: Select[*tuple[Any, ...]], params: dict[str, Any] | None
) -> Result[Any]:
    """Run ``statement`` on the operation's session (see ``Context.run``). AsyncSession
    results are buffered, so nothing reads from the connection after this returns."""
    return await ctx.run(lambda session: session.execute(statement, params))


#: The named parameter batch statements take their keys in: a statement is built once for
#: many batches, and the batch's keys are bound when it runs (``rows(..., {KEYS: ids})``).
KEYS = "inkwell_keys"


def in_ids(ctx: Context, column: Any) -> ColumnElement[bool]:
    """``column IN <the KEYS parameter>``, as one array parameter on PostgreSQL
    (``= ANY($1)``).

    One bound array keeps a single prepared statement whatever the batch size, and has no
    32,767-parameter ceiling; SQLite has no arrays, so it gets an expanding ``IN``.
    """
    if ctx.settings.is_sqlite:
        return column.in_(bindparam(KEYS, expanding=True))
    return column == any_(bindparam(KEYS, type_=_BIGINT_ARRAY))


def columns_of(entity: Any, omit: frozenset[str]) -> Any:
    """What to select for ``entity`` (a mapped class or an ``aliased`` one): the entity, or
    without the columns ``omit`` names a ``reader.Projection`` of it (``schema.reads.pruning``)."""
    return reader.Projection(entity, omit) if omit else entity


def select_where(entity: Any, *where: ColumnElement[bool]) -> Select[Any]:
    """``SELECT entity WHERE <all of where>``."""
    return select(entity).where(*where)


def root_page_statement(
    entity: Any,
    where: Sequence[ColumnElement[bool]],
    args: PageArgs,
    omit: frozenset[str],
) -> Select[Any]:
    """One page of ``entity`` rows matching ``where``, in ``args.ordering`` (the first
    ``args.limit + 1``, to tell whether there is a next page), leaving out the columns
    ``omit`` names (``schema.reads.pruning``); it takes the cursors' values as parameters
    (``keyset.cursor_params``)."""
    return (
        select(columns_of(entity, omit))
        .where(*where, *seek(entity, args))
        .order_by(*order_by(entity, args.ordering, reverse=args.backwards))
        .limit(args.limit + 1)
    )


#: The label a computed sort key's value is selected under (``computed_page_statement``).
SORT_VALUE = "inkwell_sort_value"


def computed_page_statement(
    entity: Any,
    where: Sequence[ColumnElement[bool]],
    args: PageArgs,
    omit: frozenset[str],
    counts: Select[Any],
) -> Select[Any]:
    """``root_page_statement`` for an ordering by a computed key (``SortKey.computed``):
    ``counts``, a ``SELECT (id, count) ... GROUP BY id``, is outer-joined to the rows of
    ``entity`` matching ``where`` (0 for a row it has none for), in a subquery, so the
    page's order, its cursors' seek and the rows read the count once by name. Rows come
    back as ``(entity row, count)``.

    Grouped once, not a subquery correlated to each row: PostgreSQL ran a correlated count
    as a scan of ``posts`` per tag: 705 and 968 ms for 50 tags over 10,000 posts (the bench
    seed), against 76 and 86 ms grouped once (``EXPLAIN ANALYZE``, alternated, on the busy
    2-core box).
    """
    grouped = counts.subquery()
    key, value = grouped.c
    counted = func.coalesce(value, 0).label(SORT_VALUE)
    inner = select(entity, counted).outerjoin(grouped, key == entity.id).where(*where).subquery()
    row = aliased(entity, inner)
    sort_value = inner.c[SORT_VALUE]
    return (
        select(columns_of(row, omit), sort_value)
        .where(*seek(row, args, sort_value))
        .order_by(*order_by(row, args.ordering, reverse=args.backwards, value=sort_value))
        .limit(args.limit + 1)
    )


async def root_count(ctx: Context, entity: Any, where: Sequence[ColumnElement[bool]]) -> int:
    """How many ``entity`` rows match ``where`` (cursors do not narrow a totalCount)."""
    statement = select(func.count()).select_from(entity).where(*where)
    return int((await scalars(ctx, statement))[0])


def windowed_page_statement(
    ctx: Context,
    entity: Any,
    parent: Any,
    where: Sequence[ColumnElement[bool]],
    args: PageArgs,
    join: Join | None = None,
    omit: frozenset[str] = frozenset(),
) -> Select[Any]:
    """One statement fetching a page of ``entity`` for each of many parents (their ids are
    the parameter ``KEYS``, the cursors' values ``keyset.cursor_params``), leaving out the
    columns ``omit`` names.

    ``ROW_NUMBER() OVER (PARTITION BY parent ORDER BY <ordering>)`` numbers each parent's rows
    separately, so ``row_number <= limit + 1`` gives every parent its own first (or last) N,
    cursors applying to each. Rows come back as ``(entity, parent_id)`` grouped by parent,
    in page-fetch order.
    """
    row_number = (
        func.row_number()
        .over(partition_by=parent, order_by=order_by(entity, args.ordering, reverse=args.backwards))
        .label("inkwell_rn")
    )
    inner = select(entity, parent.label("inkwell_parent"), row_number)
    if join is not None:
        inner = inner.join(*join)
    subquery = inner.where(in_ids(ctx, parent), *where, *seek(entity, args)).subquery()
    row = aliased(entity, subquery)
    return (
        select(columns_of(row, omit), subquery.c.inkwell_parent)
        .where(subquery.c.inkwell_rn <= args.limit + 1)
        .order_by(subquery.c.inkwell_parent, subquery.c.inkwell_rn)
    )


def grouped_count_statement(
    ctx: Context,
    entity: Any,
    parent: Any,
    where: Sequence[ColumnElement[bool]],
    join: Join | None = None,
) -> Select[Any]:
    """``SELECT parent, count(*) ... GROUP BY parent``: every parent's totalCount at once
    (their ids are the parameter ``KEYS``)."""
    statement = select(parent, func.count()).select_from(entity)
    if join is not None:
        statement = statement.join(*join)
    return statement.where(in_ids(ctx, parent), *where).group_by(parent)
