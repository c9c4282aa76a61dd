"""Masks unexpected errors (the client sees "Unexpected error." and an id; the log has the
cause), and gives every error an ``extensions.code`` clients can branch on.

GraphQL's own errors carry no code from graphql-core; they get Apollo Server's names, which
client libraries and gateways already know: ``GRAPHQL_PARSE_FAILED`` (syntax),
``GRAPHQL_VALIDATION_FAILED`` (set at validation: ``schema.engine.extensions.validated_documents``),
``BAD_USER_INPUT`` (variables that do not coerce), ``BAD_REQUEST`` (any other request error)
and ``INTERNAL_SERVER_ERROR`` (an error during execution that names no cause).
Source: Apollo Server docs, "Error handling" (built-in error codes).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from schema.errors import InkwellError

logger = logging.getLogger("inkwell.errors")


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors a client must not see the text of: anything raised in a resolver that
    is not an ``InkwellError``. GraphQL's own errors (syntax, validation, variable coercion)
    carry no original error, or a ``GraphQLError``, and are shown as they are."""
    original = error.original_error
    return original is not None and not isinstance(original, (InkwellError, GraphQLError))


def set_default_codes(errors: list[GraphQLError]) -> None:
    """Give each of ``errors`` that has no ``extensions.code`` its ``default_code``."""
    for error in errors:
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": default_code(error)}


def drop_tracebacks(errors: Iterable[BaseException]) -> None:
    """Let ``errors`` (and the errors they wrap or were raised from) go of their tracebacks,
    once nothing will log them: the operation's result is made.

    A raised error's traceback holds the frames it passed through, and those frames hold the
    operation's execution context, whose list of errors holds the error: a reference cycle
    of about 165 objects (frames, the request, its task) per refused request, freed only by
    the cyclic garbage collector. Frames made for a traceback do not count towards a
    collection, so the cycles of hundreds of requests gathered between two collections, and
    each such collection stopped the process for 125 to 280 ms (``bench/hostile.py``, 60
    hostile documents in flight). Without the traceback, reference counting frees it all as
    soon as the response is sent.
    Source: Python docs, "The try statement" (why ``except ... as e`` deletes ``e``: "the
    exception ... forms a reference cycle with the stack frame") and ``gc``.
    """
    pending, seen = list(errors), set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        error.__traceback__ = None
        original = getattr(error, "original_error", None)
        pending.extend(e for e in (original, error.__cause__, error.__context__) if e is not None)


def default_code(error: GraphQLError) -> str:
    """The ``extensions.code`` of an error that has none (see the module docstring)."""
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    if error.path is not None:
        return "INTERNAL_SERVER_ERROR"
    if error.message.startswith("Variable "):
        return "BAD_USER_INPUT"
    return "BAD_REQUEST"


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's ``MaskErrors``, masking only unexpected errors and logging each with an id
    that the client also gets (``extensions.errorId``), so a report can be matched to the log.
    Source: Strawberry docs, "Dealing with errors" / MaskErrors."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def _process_result(self, result: object) -> None:
        # Strawberry's test is ``isinstance`` against a runtime-checkable Protocol, which
        # looks every member up with ``inspect.getattr_static``: several microseconds per
        # operation, with or without errors. Every result with errors has the attribute.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        error_id = uuid.uuid4().hex
        logger.error(
            "unexpected error %s at %s",
            error_id,
            ".".join(map(str, error.path or [])) or "-",
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
        return masked
