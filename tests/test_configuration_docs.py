"""The configuration reference (docs/CONFIGURATION.md) names every setting, and nothing that
is not one (or a variable another library reads, said so in its row)."""

from __future__ import annotations

import re
from pathlib import Path

from settings import Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "CONFIGURATION.md"
#: Variables read by a library Inkwell runs on, not by settings.py.
LIBRARIES = ("OTEL_", "FORWARDED_ALLOW_IPS", "PROMETHEUS_MULTIPROC_DIR")


def documented() -> set[str]:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_every_setting_is_documented_and_every_documented_variable_is_read() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    names = documented()
    assert settings - names == set(), "settings missing from docs/CONFIGURATION.md"
    assert {n for n in names - settings if not n.startswith(LIBRARIES)} == set()
