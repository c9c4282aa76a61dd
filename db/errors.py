"""Recognising database errors that have a meaning for the API, on either database.

SQLAlchemy wraps driver errors in ``sqlalchemy.exc.DBAPIError``; the driver's own exception is
``.orig``. asyncpg's carry the SQLSTATE code (``sqlstate``); sqlite3's carry an error name.
Source: PostgreSQL docs, Appendix A "PostgreSQL Error Codes"; SQLite docs, "Result Codes".
"""

from __future__ import annotations

import errno
import socket

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: serialization_failure, deadlock_detected: the transaction was aborted; a retry may succeed.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: unique_violation, foreign_key_violation
#: Class 08 (connection exception), admin/crash shutdown, cannot connect now, too many
#: connections: the database is not there to answer, for now.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: Socket errors that mean the database server cannot be reached.
CONNECTION_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)
#: query_canceled: here, a statement stopped by statement_timeout.
QUERY_CANCELED = "57014"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_transaction_conflict(exc: BaseException) -> bool:
    """True for a PostgreSQL serialization failure or deadlock, or SQLite's "database is
    locked" after its busy timeout: concurrency aborted the transaction, and sending the same
    request again is the remedy."""
    if not isinstance(exc, DBAPIError):
        return False
    if _sqlstate(exc) in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def violates(exc: BaseException, constraint: str) -> bool:
    """True when ``exc`` is a violation of the unique or foreign key constraint named
    ``constraint`` (a name from the naming convention, e.g. ``uq_users_email``).

    PostgreSQL names the constraint. SQLite does not: a unique violation names the
    ``table.column`` (matched against a ``uq_<table>_<column>`` name), and a foreign key
    violation names nothing, so it matches any ``fk_`` constraint.
    """
    if not isinstance(exc, DBAPIError):
        return False
    code = _sqlstate(exc)
    if code in (UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION):
        driver_error = getattr(exc.orig, "__cause__", None)
        named = getattr(driver_error, "constraint_name", None)
        return named == constraint if named else constraint in str(exc.orig)
    message = str(exc.orig)
    if constraint.startswith("fk_"):
        return "FOREIGN KEY constraint failed" in message
    table_column = constraint.removeprefix("uq_").replace("_", ".", 1)
    return f"UNIQUE constraint failed: {table_column}" in message


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached or is too busy to take the
    request: the connection was refused or lost (the driver's ``OSError``, SQLSTATE class 08,
    a server shutting down or refusing connections), or no pooled connection came free within
    ``DB_POOL_TIMEOUT``. The request failed as a whole and may be retried later."""
    if isinstance(exc, PoolTimeout) or _unreachable(exc):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = _sqlstate(exc)
        if code is not None and (code.startswith("08") or code in UNAVAILABLE_SQLSTATES):
            return True
        return _unreachable(exc.orig) or "connection is closed" in str(exc.orig)
    return False


def _unreachable(exc: BaseException | None) -> bool:
    """A socket-level failure to reach the server (refused, reset, no route, no such host)."""
    if isinstance(exc, (ConnectionError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and exc.errno in CONNECTION_ERRNOS


def is_statement_timeout(exc: BaseException) -> bool:
    """True when PostgreSQL cancelled a statement (``statement_timeout``: the operation's
    deadline)."""
    return isinstance(exc, DBAPIError) and _sqlstate(exc) == QUERY_CANCELED
