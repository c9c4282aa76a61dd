"""Log lines an operator can search: one format (``LOG_FORMAT``: ``text`` or ``json``) for
every logger of every process, and one line per GraphQL operation.

The code logs through the standard library (``logging.getLogger``), as do uvicorn and
SQLAlchemy; structlog's ``ProcessorFormatter`` renders every record, so all lines share
their fields: ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``pid`` (the worker),
``message`` and, while an operation is being served, its ``request_id``; ``json`` writes
one JSON object per line (a traceback in ``exception``), ``text`` the same fields for a
person to read. ``config``
is a ``logging.config.dictConfig`` dictionary; ``serve`` hands it to uvicorn, which applies
it in its own process and again in each worker it starts (workers are new processes that
configure nothing themselves: before this their lines lost their format and INFO). A
``RepeatedLines`` filter on the handler rate-limits identical warnings
(``schema.telemetry.repeats``).
Source: structlog docs, "Standard Library Logging" ("Rendering Using structlog-based
Formatters Within logging"); uvicorn docs, "Settings" (``--log-config``, a dictConfig).
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

from schema.telemetry.operation import Operation, current
from settings import Settings

OPERATIONS = logging.getLogger("inkwell.operation")
#: The extra fields a record may carry into its line (``logger.info(..., extra={...})``).
FIELDS = (
    "request_id",
    "transport",
    "operation_type",
    "operation_name",
    "status",
    "duration_ms",
    "sql_statements",
    "sql_ms",
    "error_codes",
    "viewer_id",
    "repeated",
    "sql",
    "parameters",
    "via",
)


def _request_id(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    if "request_id" not in event and (operation := current()) is not None:
        event["request_id"] = operation.request_id
    return event


def _process(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    record = event.get("_record")
    if record is not None:
        event["pid"] = record.process  # which worker wrote it
    return event


def _upper_level(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    event["level"] = event["level"].upper()
    return event


def _dumps(value: Any, **options: Any) -> str:
    return orjson.dumps(value, default=options.get("default")).decode()


def formatter(json: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every line: one JSON object per line when ``json``, else text.
    (A dictConfig factory: ``{"()": "schema.telemetry.logs.formatter", "json": true}``.)"""
    renderer: list[Any] = (
        [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
        if json
        # Levels in capitals, as the standard library writes them (``grep ERROR`` finds them);
        # a plain traceback: never a rich one, whose local variables may hold secrets.
        else [
            _upper_level,
            structlog.dev.ConsoleRenderer(
                colors=False, pad_event_to=0, exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _process,
            structlog.stdlib.ExtraAdder(FIELDS),
            _request_id,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


def config(settings: Settings, *, uvicorn: bool = True) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary for ``settings`` (``LOG_FORMAT``,
    ``LOG_LEVEL``, ``LOG_REPEAT_SECONDS``): one handler on the root logger (standard
    error), and (``uvicorn``) uvicorn's loggers passing their lines to it."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "inkwell": {
                "()": "schema.telemetry.logs.formatter",
                "json": settings.log_format == "json",
            }
        },
        "filters": {
            "repeats": {
                "()": "schema.telemetry.repeats.RepeatedLines",
                "seconds": settings.log_repeat_seconds,
            }
        },
        "handlers": {
            "inkwell": {
                "class": "logging.StreamHandler",
                "formatter": "inkwell",
                "filters": ["repeats"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in (("uvicorn", "uvicorn.error", "uvicorn.access") if uvicorn else ())
        },
        "root": {"handlers": ["inkwell"], "level": level},
    }


def configure(settings: Settings, *, unless_configured: bool = False) -> None:
    """Apply ``config(settings)`` to this process. With ``unless_configured``, only if the
    root logger has no handler yet (not in a test run, whose capture must stay), and leaving
    uvicorn's loggers as they are: a server started as ``uvicorn server:app`` keeps
    uvicorn's own lines and flags, and the app's lines get their format."""
    if unless_configured and logging.getLogger().handlers:
        return
    logging.config.dictConfig(config(settings, uvicorn=not unless_configured))


def log_operation(operation: Operation) -> None:
    """Write ``operation``'s line (ended): INFO, or WARNING when it failed on the server's
    side; a request that ran no operation and was not refused (the GraphiQL page) at DEBUG."""
    if operation.kind is None and not operation.error_codes and (operation.status or 0) < 400:
        level = logging.DEBUG
    elif operation.outcome == "server_error":
        level = logging.WARNING
    else:
        level = logging.INFO
    if not OPERATIONS.isEnabledFor(level):
        return
    OPERATIONS.log(
        level,
        "%s %s",
        operation.kind or "request",
        operation.name or ("(anonymous)" if operation.kind else "(no operation)"),
        extra={
            "request_id": operation.request_id,
            "transport": operation.transport,
            "operation_type": operation.kind,
            "operation_name": operation.name,
            "status": operation.status,
            "duration_ms": round(operation.duration_ms, 3),
            "sql_statements": operation.sql_statements,
            "sql_ms": round(operation.sql_ms, 3),
            "error_codes": operation.error_codes,
            "viewer_id": operation.viewer_id,
        },
    )
