"""Keyset (seek) pagination in SQL: sort keys, orderings, page bounds and the clauses they imply.

A connection is ordered by one sort key plus the primary key as a tie-breaker, so the order is
total and a cursor (the sort values of one row) names a unique position. A page is "the rows
strictly after the ``after`` cursor (and before ``before``), the first/last N of them": an
index range scan, never OFFSET, so a page costs the same deep in a list as at its start and a
concurrent insert neither duplicates nor skips rows. The Relay side (arguments, opaque
cursors) is ``schema.relay.pagination``.

Source: Markus Winand, "We need tool support for keyset pagination"
(https://use-the-index-luke.com/no-offset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_

#: A sort value's kind: ``"int"`` an id-like positive integer, ``"count"`` a non-negative one,
#: ``"float"`` a computed rank (full-text search, ``schema.reads.search``).
SortKind = Literal["int", "count", "str", "datetime", "float"]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One orderable column: its GraphQL name, model attribute, value kind and nullability.

    ``computed``, for a count that is no column of the model (of related rows), makes it per
    viewer: ``computed(viewer)`` is a ``SELECT (id, count) ... GROUP BY id`` of the model's
    rows that have any (the others count 0), which the root page joins and selects under
    the name ``attr`` (``fetch.computed_page_statement``) and passes to ``order_by`` and
    ``seek`` as ``value``. A function compares by identity, so the key stays hashable in
    ``PageArgs``.
    """

    name: str
    attr: str
    kind: SortKind
    nullable: bool = False
    computed: Callable[[Any], Select[Any]] | None = None


ID_KEY = SortKey("id", "id", "int")


@dataclass(frozen=True, slots=True)
class Ordering:
    """A total order: ``key`` (ties broken by ``id`` in the same direction), NULLs last."""

    key: SortKey = ID_KEY
    descending: bool = False


@dataclass(frozen=True, slots=True)
class PageArgs:
    """Validated connection arguments, hashable so they can key a DataLoader.

    ``after``/``before`` hold decoded cursor values: ``(sort value, id)``.
    """

    ordering: Ordering
    limit: int
    backwards: bool
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None


def _sorted_by(entity: Any, key: SortKey, value: Any) -> Any:
    """The column ``key`` orders ``entity`` by: ``value`` for a computed key (raises
    ``ValueError`` without one), else the entity's attribute."""
    if key.computed is None:
        return getattr(entity, key.attr)
    if value is None:
        raise ValueError(f"the sort key {key.name} is computed: pass its value column")
    return value


def order_by(
    entity: Any, ordering: Ordering, *, reverse: bool = False, value: Any = None
) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``ordering`` over ``entity`` (a model or an alias of one);
    ``value`` is the column holding a computed key's value (``SortKey.computed``).

    ``reverse`` flips every direction (and NULL placement): fetching the last N rows reads the
    order backwards and the page is re-reversed in Python.
    """
    descending = ordering.descending != reverse
    key = ordering.key
    columns = [_sorted_by(entity, key, value)] if key is not ID_KEY else []
    clauses: list[ColumnElement[Any]] = []
    for column in [*columns, entity.id]:
        clause = column.desc() if descending else column.asc()
        if ordering.key.nullable and column is not entity.id:
            clause = clause.nulls_first() if reverse else clause.nulls_last()
        clauses.append(clause)
    return clauses


def seek(entity: Any, args: PageArgs, value: Any = None) -> list[ColumnElement[bool]]:
    """WHERE clauses keeping the rows strictly between the ``after`` and ``before`` cursors;
    ``value`` is the column holding a computed key's value (``SortKey.computed``).

    The cursors' values are named parameters (``cursor_params`` gives them), so a statement is
    the same for every cursor of its ``shape`` and can be shared.
    """
    clauses = []
    column = _sorted_by(entity, args.ordering.key, value)
    for side, cursor, forward in (("after", args.after, True), ("before", args.before, False)):
        if cursor is not None:
            bound = (
                None if cursor[0] is None else bindparam(f"inkwell_{side}_value", type_=column.type)
            )
            row_id = bindparam(f"inkwell_{side}_id", type_=entity.id.type)
            clauses.append(_beyond(entity, args.ordering, column, (bound, row_id), forward=forward))
    return clauses


def _beyond(
    entity: Any, ordering: Ordering, column: Any, position: tuple[Any, Any], *, forward: bool
) -> ColumnElement[bool]:
    """Rows after (``forward``) or before ``position`` in ``ordering`` (its key's values in
    ``column``), NULLs sorting last."""
    value, row_id = position
    greater = ordering.descending != forward  # "past" means ">" (else "<")

    def past(left: Any, bound: Any) -> ColumnElement[bool]:
        return left > bound if greater else left < bound

    id_past = past(entity.id, row_id)
    if ordering.key is ID_KEY:
        return id_past
    if value is None:  # only nullable keys: NULLs sort after every value
        return (
            and_(column.is_(None), id_past)
            if forward
            else or_(column.is_not(None), and_(column.is_(None), id_past))
        )
    clause = or_(past(column, value), and_(column == value, id_past))
    if ordering.key.nullable and forward:
        clause = or_(clause, column.is_(None))
    return clause


def shape(args: PageArgs) -> PageArgs:
    """``args`` with each cursor reduced to what its clauses' shape depends on: whether there
    is one, and whether its sort value is NULL (``seek``)."""
    if args.after is None and args.before is None:
        return args
    return replace(args, after=_shape(args.after), before=_shape(args.before))


def _shape(position: tuple[Any, int] | None) -> tuple[Any, int] | None:
    return None if position is None else (None if position[0] is None else "value", 0)


def cursor_params(args: PageArgs) -> dict[str, Any]:
    """The named parameters of ``seek``'s clauses for ``args``' cursors."""
    params: dict[str, Any] = {}
    for side, position in (("after", args.after), ("before", args.before)):
        if position is not None:
            value, row_id = position
            params[f"inkwell_{side}_id"] = row_id
            if value is not None:
                params[f"inkwell_{side}_value"] = value
    return params


@dataclass(slots=True)
class Page:
    """One page of rows in connection order, with the Relay ``PageInfo`` booleans."""

    rows: list[Any]
    has_next: bool
    has_previous: bool


def make_page(rows: Sequence[Any], args: PageArgs) -> Page:
    """Turn the ``limit + 1`` rows a page query fetched into a ``Page``.

    The extra row only tells whether more rows lie in the fetch direction. Per the Relay
    spec, the flag for the other direction is true when a cursor bounds that side.
    """
    more = len(rows) > args.limit
    page = list(rows[: args.limit])
    if args.backwards:
        page.reverse()
        return Page(page, has_next=args.before is not None, has_previous=more)
    return Page(page, has_next=more, has_previous=args.after is not None)
