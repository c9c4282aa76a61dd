"""Inkwell's domain errors: expected failures a client can act on.

Each carries ``extensions = {"code": ...}``; graphql-core copies an original error's
``extensions`` into the GraphQL error, so clients can branch on ``errors[].extensions.code``.
Anything that is not an ``InkwellError`` is unexpected and masked (``schema.extensions.masking``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class InkwellError(Exception):
    """Base of every expected error. ``message`` is shown to the client verbatim."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = {"code": self.code, **details}


class BadUserInput(InkwellError):
    """An argument is malformed or out of range (a bad cursor, an oversized page, a bad id)."""

    code = "BAD_USER_INPUT"
