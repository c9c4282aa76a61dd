"""One operation as the log line and the metrics see it: the record, and where it is current.

An ``Operation`` is made when a GraphQL request arrives (``schema.telemetry.http``: an HTTP
request to ``/graphql``, or over a WebSocket one per operation, made by
``schema.telemetry.extension``), filled while it runs (the extension: its type, name,
viewer, SQL statements and error codes; the middleware: the HTTP status and the duration)
and handed to both sinks once it ends (``schema.telemetry.report``). While it runs it is the
current one (a context variable, so tasks it starts see it too): every log line written
meanwhile carries its request id.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

#: What a client's ``X-Request-ID`` may be to be used as it is: at most 128 characters that
#: need no escaping in a header, a log line or a URL (UUIDs, hex trace ids, ULIDs, nginx's
#: ``$request_id``). Anything else is replaced by a generated id.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")
#: Server error codes: the operation failed through no fault of the client's.
SERVER_ERROR_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "REQUEST_TIMEOUT"})
#: The longest operation name a log line carries (GraphQL names have no limit).
MAX_NAME = 100

_current: ContextVar[Operation | None] = ContextVar("inkwell_operation", default=None)


def request_id(offered: str | None) -> str:
    """``offered`` (a client's or a proxy's ``X-Request-ID``) when it is a safe id
    (``REQUEST_ID``), else a new random one (32 hex digits, 128 bits)."""
    if offered is not None and REQUEST_ID.fullmatch(offered):
        return offered
    return os.urandom(16).hex()


@dataclass(slots=True, eq=False)
class Operation:
    """What is known about one operation (or, for a WebSocket, the connection carrying
    operations: ``connection``). Times are ``time.perf_counter()`` seconds; ``None`` is
    "not known" (an HTTP request refused before any operation has no type or name)."""

    request_id: str
    #: ``http`` (including HTTP streams) or ``ws``.
    transport: str
    started: float = field(default_factory=time.perf_counter)
    #: A WebSocket connection's record: its operations get records of their own.
    connection: bool = False
    #: ``query``, ``mutation`` or ``subscription``.
    kind: str | None = None
    #: The operation's name as the client wrote it (at most ``MAX_NAME`` characters).
    name: str | None = None
    #: The name as the metrics label it (``schema.telemetry.names``).
    name_label: str = "unknown"
    status: int | None = None
    duration_ms: float = 0.0
    sql_statements: int = 0
    sql_ms: float = 0.0
    viewer_id: int | None = None
    #: ``extensions.code`` of each error the client got, in order, each once.
    error_codes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``ok``, ``client_error`` (errors the client caused or may fix, or a 4xx) or
        ``server_error`` (a 5xx, or an error in ``SERVER_ERROR_CODES``)."""
        status = self.status or 200
        if status >= 500 or not SERVER_ERROR_CODES.isdisjoint(self.error_codes):
            return "server_error"
        if self.error_codes or status >= 400:
            return "client_error"
        return "ok"

    def add_error_code(self, code: object) -> None:
        """Record an error's ``extensions.code`` (once per distinct code)."""
        if isinstance(code, str) and code not in self.error_codes:
            self.error_codes.append(code)

    def end(self) -> None:
        """Stop the clock: ``duration_ms`` is the time since ``started``."""
        self.duration_ms = (time.perf_counter() - self.started) * 1000.0

    def enter(self) -> Token[Operation | None]:
        """Make this the current operation; pass the token to ``leave``."""
        return _current.set(self)

    @staticmethod
    def leave(token: Token[Operation | None]) -> None:
        """Restore the operation that was current before ``enter`` returned ``token``. A
        token made in another context (a stream closed from another task) cannot be reset
        there; that context's value goes with it."""
        with contextlib.suppress(ValueError):
            _current.reset(token)


def current() -> Operation | None:
    """The operation being served in this task (or that started it), if any."""
    return _current.get()
