"""Inkwell's domain errors: expected failures a client can act on.

Each carries ``extensions = {"code": ...}``; graphql-core copies an original error's
``extensions`` into the GraphQL error, so clients can branch on ``errors[].extensions.code``.
Anything that is not an ``InkwellError`` is unexpected and masked
(``schema.engine.extensions.masking``).
"""

from __future__ import annotations

import math
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


class AuthenticationFailed(InkwellError):
    """The request's credentials are bad: a malformed, expired or tampered token, or one of
    a deactivated or deleted account. The whole request fails (``data`` is null); sending no
    token at all is not an error (the viewer is anonymous)."""

    code = "UNAUTHENTICATED"


class TransactionConflict(InkwellError):
    """The database aborted the operation's transaction to keep concurrent ones correct (a
    PostgreSQL serialization failure or deadlock, or SQLite's lock timeout). Nothing was
    applied; the same request may simply be sent again (``extensions.retryable``)."""

    code = "TRANSACTION_CONFLICT"

    def __init__(
        self,
        message: str = "The operation conflicted with a concurrent one and "
        "was rolled back; retry it.",
    ) -> None:
        super().__init__(message, retryable=True)


class ServiceUnavailable(InkwellError):
    """The database could not be reached, or was too busy, to answer this request; nothing
    was applied. ``extensions.retryable``: send it again later (``/readyz`` says when the
    database is back)."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__(
            "The service is unavailable right now (its database cannot be reached); "
            "nothing was changed. Retry later.",
            retryable=True,
        )


class RequestTimeout(InkwellError):
    """The operation ran past ``REQUEST_TIMEOUT_SECONDS`` and was stopped; a mutation's
    transaction was rolled back, so nothing was applied."""

    code = "REQUEST_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The operation took longer than {seconds:g} s and was stopped; nothing was "
            "changed. Ask for less, or retry.",
            limit=seconds,
        )


class RateLimited(InkwellError):
    """Over a rate limit (``schema.engine.rate_limits``): too many operations, or sign-in or
    registration attempts, in too short a time; nothing was run. ``extensions.retryAfterSeconds``
    (whole seconds, rounded up) says when the same request would pass; over HTTP the response
    is 429 with that ``Retry-After``."""

    code = "RATE_LIMITED"

    def __init__(self, seconds: float) -> None:
        wait = max(1, math.ceil(seconds))
        super().__init__(
            f"Too many requests; nothing was run. Retry in {wait} s.",
            retryAfterSeconds=wait,
            retryable=True,
        )
