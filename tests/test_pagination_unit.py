"""Cursor and argument validation, without a database."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from schema.errors import BadUserInput
from schema.reads.keyset import ID_KEY, Ordering, SortKey, make_page
from schema.relay.pagination import decode_cursor, encode_cursor, page_args

CREATED = Ordering(SortKey("createdAt", "created_at", "datetime"))
PUBLISHED = Ordering(SortKey("publishedAt", "published_at", "datetime", nullable=True))


def args(**kw: object) -> object:
    base = {"first": None, "after": None, "last": None, "before": None}
    return page_args(CREATED, **{**base, **kw}, default_size=20, max_size=100)  # type: ignore[arg-type]


def test_cursor_round_trip_keeps_aware_datetimes() -> None:
    row = SimpleNamespace(id=7, created_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    value, row_id = decode_cursor(encode_cursor(CREATED, row), CREATED, "after")
    assert (value, row_id) == (row.created_at, 7)
    assert value.tzinfo is not None


def test_null_cursor_value_only_for_nullable_keys() -> None:
    row = SimpleNamespace(id=3, published_at=None, created_at=None)
    assert decode_cursor(encode_cursor(PUBLISHED, row), PUBLISHED, "after") == (None, 3)
    with pytest.raises(BadUserInput):
        decode_cursor(encode_cursor(CREATED, row), CREATED, "after")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["createdAt", "2026-01-01T00:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b'["createdAt", "yesterday", 1]').decode(),
        base64.urlsafe_b64encode(b'["createdAt", "2026-01-01T00:00:00", 1]').decode(),
        base64.urlsafe_b64encode(b'["createdAt", "2026-01-01T00:00:00+00:00", "1"]').decode(),
        base64.urlsafe_b64encode(b'["createdAt", "2026-01-01T00:00:00+00:00", true]').decode(),
        "\u00e9t\u00e9",
    ],
)
def test_malformed_cursors_are_bad_input(cursor: str) -> None:
    with pytest.raises(BadUserInput, match="not a valid cursor"):
        decode_cursor(cursor, CREATED, "after")


def test_cursor_of_another_ordering_is_rejected() -> None:
    cursor = encode_cursor(Ordering(ID_KEY), SimpleNamespace(id=1))
    with pytest.raises(BadUserInput, match="ordering by id"):
        decode_cursor(cursor, CREATED, "after")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"first": 101}, "above the page size limit of 100"),
        ({"last": 1000}, "above the page size limit of 100"),
        ({"first": -1}, "must not be negative"),
        ({"first": 1, "last": 1}, "not both"),
    ],
)
def test_page_arguments_are_validated(kw: dict[str, int], message: str) -> None:
    with pytest.raises(BadUserInput, match=message):
        args(**kw)


def test_default_and_explicit_sizes() -> None:
    assert args().limit == 20  # type: ignore[attr-defined]
    assert args(first=100).limit == 100  # type: ignore[attr-defined]
    assert args(last=5).backwards  # type: ignore[attr-defined]


def test_make_page_flags() -> None:
    forward = page_args(
        Ordering(), first=2, after=None, last=None, before=None, default_size=20, max_size=100
    )
    page = make_page([1, 2, 3], forward)
    assert (page.rows, page.has_next, page.has_previous) == ([1, 2], True, False)
    backward = page_args(
        Ordering(), first=None, after=None, last=2, before=None, default_size=20, max_size=100
    )
    page = make_page([3, 2, 1], backward)  # fetched in reverse order
    assert (page.rows, page.has_next, page.has_previous) == ([2, 3], False, True)
