"""Settings as the command line reads them: every problem one line naming its variable, and a
warning for variables that look like a misspelt setting."""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Mapping

from pydantic import ValidationError

from schema.telemetry import logs
from settings import Settings, get_settings

logger = logging.getLogger("inkwell")

#: Prefixes of variables that belong to other programs; never taken for a misspelt setting.
FOREIGN_PREFIXES = ("PYTHON", "UVICORN_", "OTEL_", "PG", "LC_", "XDG_", "NPM_", "PROMETHEUS_")


def configured() -> Settings:
    """The environment's settings. Invalid ones (a production server without a real
    JWT_SECRET, ``PORT=abc``) stop the process with exit code 2 and one line per problem,
    each naming its variable, before anything starts."""
    try:
        return get_settings()
    except ValidationError as exc:
        print(f"inkwell: invalid configuration:\n{problems(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def problems(exc: ValidationError) -> str:
    """``exc``'s errors, one line each: ``  VARIABLE: message``."""
    lines = []
    for error in exc.errors():
        name = "_".join(map(str, error["loc"])).upper() or "settings"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}")
    return "\n".join(lines)


def misspelt(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Pairs (variable, the setting it looks like) for each variable of ``environ`` that is
    not a setting but is one or two typing mistakes away from one (``ENVIROMENT``)."""
    names = [name.upper() for name in Settings.model_fields]
    found = []
    for variable in environ:
        upper = variable.upper()
        if upper in names or upper.startswith(FOREIGN_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, names, n=1, cutoff=0.85)
        if close:
            found.append((variable, close[0]))
    return found


def setup_logging(settings: Settings) -> None:
    """The command's log lines at ``LOG_LEVEL`` in ``LOG_FORMAT`` (``schema.telemetry.logs``),
    and a warning for each variable that looks like a misspelt setting (its value is
    ignored)."""
    logs.configure(settings)
    for variable, setting in misspelt(os.environ):
        logger.warning("%s is not a setting (ignored): did you mean %s?", variable, setting)
