"""Checks on client-supplied values before they reach SQL, each failing with ``BadUserInput``.

PostgreSQL rejects text containing NUL, and no database stores a lone UTF-16 surrogate; left
unchecked, either becomes a driver error (masked, but still a 500-class failure for a client
mistake). Echoed values are shortened so an error never repeats a megabyte back.
"""

from __future__ import annotations

from typing import Any

from schema.errors import BadUserInput

#: The largest primary key (BIGINT).
MAX_PK = 2**63 - 1
#: The longest search text a filter takes.
MAX_SEARCH = 200
#: How much of an offending value an error message repeats.
ECHO_CHARS = 40


def echo(value: object) -> str:
    """``repr(value)``, shortened to about ``ECHO_CHARS`` characters for error messages."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[: ECHO_CHARS - 3] + "...'"


def text_argument(value: str, argument: str, max_length: int) -> str:
    """``value`` if it is storable text of at most ``max_length`` characters.

    Raises ``BadUserInput`` for longer text, a NUL character or a lone surrogate.
    """
    if len(value) > max_length:
        raise BadUserInput(
            f"`{argument}` is {len(value)} characters long; the limit is {max_length}.",
            argument=argument,
        )
    if "\x00" in value or not encodable(value):
        raise BadUserInput(
            f"`{argument}` contains a character that cannot be stored (NUL or a lone surrogate).",
            argument=argument,
        )
    return value


def max_length_of(column: Any) -> int:
    """The declared length of a ``String(n)`` column, so input limits follow the schema."""
    length = getattr(column.type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} has no declared length")
    return length


def encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
