"""Inkwell's command line: ``python server.py <command>`` (or ``inkwell <command>``).

The parser is built before any setting is read, so ``--help`` works whatever the environment
holds; then the settings are read once (``cli.configuration``), and each command runs.
Exit codes: 0 done, 1 the command could not do its work (said in one line), 2 invalid
configuration or arguments.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cli import accounts, data, serve
from cli.configuration import configured, setup_logging

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def parser() -> argparse.ArgumentParser:
    """The command line's parser: one sub-command per task."""
    root = argparse.ArgumentParser(
        prog="server.py",
        description="Inkwell, a GraphQL API server for a publishing platform. "
        "Settings come from environment variables (README.md, Configuration).",
    )
    commands = root.add_subparsers(dest="command", required=True)
    serve.add_parser(commands)
    data.add_parsers(commands, SCHEMA_FILE)
    accounts.add_parsers(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns the process exit code."""
    args = parser().parse_args(argv)
    settings = configured()
    setup_logging(settings)
    result: int = args.run(settings, args)
    return result
