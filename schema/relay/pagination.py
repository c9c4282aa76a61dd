"""Relay's side of keyset pagination: the connection arguments and the opaque cursors.

``page_args`` validates ``first``/``after``/``last``/``before`` into the ``PageArgs`` a page
query takes, decoding cursors made by ``encode_cursor`` (the sort values of one row); the
SQL they imply is ``schema.reads.keyset``'s.

Source: GraphQL Cursor Connections Specification (https://relay.dev/graphql/connections.htm).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from typing import Any

from schema.errors import BadUserInput
from schema.reads.keyset import ID_KEY, Ordering, PageArgs, SortKey
from schema.validation import MAX_PK


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
    if key.kind == "float":
        # JSON writes a float as its repr, which reads back as the same double: a rank in a
        # cursor compares equal to the rank the next page's statement computes again.
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError("float")
        if not math.isfinite(value):
            raise ValueError("float")
        return float(value)
    if key.kind in ("int", "count"):
        # An id is positive; a count (``SortKey.kind``) may be 0. Both stay in BIGINT's range.
        least = 0 if key.kind == "count" else 1
        if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= MAX_PK:
            raise ValueError("int")
        return value
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("str")
    value.encode("utf-8")  # UnicodeEncodeError for a lone surrogate
    return value


# The keyset types the arguments are made of, re-exported: a caller validating Relay
# arguments needs them too.
__all__ = [
    "ID_KEY",
    "Ordering",
    "PageArgs",
    "SortKey",
    "decode_cursor",
    "encode_cursor",
    "page_args",
]
