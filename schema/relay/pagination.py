"""Keyset (seek) pagination for Relay connections: arguments, cursors and the SQL they imply.

A connection is ordered by one sort key plus the primary key as a tie-breaker, so the order is
total and a cursor (the sort values of one row) names a unique position. A page is "the rows
strictly after the ``after`` cursor (and before ``before``), the first/last N of them": an
index range scan, never OFFSET, so a page costs the same deep in a list as at its start and a
concurrent insert neither duplicates nor skips rows.

Sources: GraphQL Cursor Connections Specification (https://relay.dev/graphql/connections.htm);
Markus Winand, "We need tool support for keyset pagination" (https://use-the-index-luke.com/no-offset).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, or_

from schema.errors import BadUserInput
from schema.validation import MAX_PK

SortKind = Literal["int", "str", "datetime"]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One orderable column: its GraphQL name, model attribute, value kind and nullability."""

    name: str
    attr: str
    kind: SortKind
    nullable: bool = False


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


def page_args(
    ordering: Ordering,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default_size: int,
    max_size: int,
) -> PageArgs:
    """Validate Relay arguments and decode their cursors.

    ``first`` pages forward from ``after``; ``last`` pages backward from ``before``; with neither,
    the first ``default_size`` rows. Raises ``BadUserInput`` for negative sizes, sizes above
    ``max_size``, ``first`` together with ``last``, or a malformed cursor.
    """
    if first is not None and last is not None:
        raise BadUserInput("Pass either `first` or `last`, not both.")
    for name, size in (("first", first), ("last", last)):
        if size is not None and size < 0:
            raise BadUserInput(f"`{name}` must not be negative (got {size}).", argument=name)
        if size is not None and size > max_size:
            raise BadUserInput(
                f"`{name}` is {size}, above the page size limit of {max_size}; "
                "page through the connection with cursors instead.",
                argument=name,
                limit=max_size,
            )
    # `before` alone means "the page just before this cursor", as a client paging back expects.
    backwards = last is not None or (first is None and before is not None and after is None)
    limit = last if last is not None else first if first is not None else default_size
    return PageArgs(
        ordering=ordering,
        limit=limit,
        backwards=backwards,
        after=decode_cursor(after, ordering, "after") if after is not None else None,
        before=decode_cursor(before, ordering, "before") if before is not None else None,
    )


def encode_cursor(ordering: Ordering, row: Any) -> str:
    """An opaque cursor for ``row``'s position: base64url of ``[key name, sort value, id]``."""
    value = getattr(row, ordering.key.attr)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([ordering.key.name, value, row.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str, ordering: Ordering, argument: str) -> tuple[Any, int]:
    """Decode and validate a cursor made by ``encode_cursor`` for the same ordering.

    Raises ``BadUserInput`` when the text is not one of our cursors, or was made for a
    different order (its values would seek to a meaningless position).
    """
    key = ordering.key
    try:
        name, value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        row_id = _parse_value(ID_KEY, row_id)
        if name != key.name:
            raise BadUserInput(
                f"`{argument}` is a cursor for ordering by {name}, but this connection is "
                f"ordered by {key.name}.",
                argument=argument,
            )
        return _parse_value(key, value), row_id
    except BadUserInput:
        raise
    except (ValueError, TypeError, OverflowError, UnicodeError, binascii.Error):
        raise BadUserInput(
            f"`{argument}` is not a valid cursor; use a cursor returned by this connection.",
            argument=argument,
        ) from None


def _parse_value(key: SortKey, value: Any) -> Any:
    if value is None:
        if key.nullable:
            return None
        raise ValueError("null")
    if key.kind == "datetime":
        if not isinstance(value, str):
            raise ValueError("datetime")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime")
        return parsed.astimezone(UTC)  # OverflowError near year 1 or 9999
    if key.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_PK:
            raise ValueError("int")
        return value
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("str")
    value.encode("utf-8")  # UnicodeEncodeError for a lone surrogate
    return value


def order_by(entity: Any, ordering: Ordering, *, reverse: bool = False) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``ordering`` over ``entity`` (a model or an alias of one).

    ``reverse`` flips every direction (and NULL placement): fetching the last N rows reads the
    order backwards and the page is re-reversed in Python.
    """
    descending = ordering.descending != reverse
    columns = [getattr(entity, ordering.key.attr)] if ordering.key is not ID_KEY else []
    clauses: list[ColumnElement[Any]] = []
    for column in [*columns, entity.id]:
        clause = column.desc() if descending else column.asc()
        if ordering.key.nullable and column is not entity.id:
            clause = clause.nulls_first() if reverse else clause.nulls_last()
        clauses.append(clause)
    return clauses


def seek(entity: Any, args: PageArgs) -> list[ColumnElement[bool]]:
    """WHERE clauses keeping the rows strictly between the ``after`` and ``before`` cursors."""
    clauses = []
    if args.after is not None:
        clauses.append(_beyond(entity, args.ordering, args.after, forward=True))
    if args.before is not None:
        clauses.append(_beyond(entity, args.ordering, args.before, forward=False))
    return clauses


def _beyond(
    entity: Any, ordering: Ordering, position: tuple[Any, int], *, forward: bool
) -> ColumnElement[bool]:
    """Rows after (``forward``) or before ``position`` in ``ordering``, NULLs sorting last."""
    value, row_id = position
    greater = ordering.descending != forward  # "past" means ">" (else "<")

    def past(column: Any, bound: Any) -> ColumnElement[bool]:
        return column > bound if greater else column < bound

    id_past = past(entity.id, row_id)
    if ordering.key is ID_KEY:
        return id_past
    column = getattr(entity, ordering.key.attr)
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


__all__ = [
    "ID_KEY",
    "Ordering",
    "Page",
    "PageArgs",
    "SortKey",
    "decode_cursor",
    "encode_cursor",
    "make_page",
    "order_by",
    "page_args",
    "seek",
]
