"""``migrate``, ``seed`` and ``export-schema``: the database's schema and demo data, and the
GraphQL schema's SDL."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from cli.serve import shown_url
from db import migrate, seed
from db.engine import command_engine
from settings import Settings

#: SeedSize fields the seed command takes as flags (--posts-per-user ...).
SEED_FLAGS = ("users", "posts_per_user", "comments_per_post", "tags", "tags_per_post", "seed")


def add_parsers(commands: Any, schema_file: Path) -> None:
    """Add ``migrate``, ``seed`` and ``export-schema`` to ``commands`` (argparse
    sub-parsers); ``schema_file`` is where the SDL goes by default."""
    migrate_cmd = commands.add_parser("migrate", help="apply Alembic migrations")
    migrate_cmd.add_argument("--revision", default="head")
    migrate_cmd.set_defaults(run=run_migrate)
    seed_cmd = commands.add_parser("seed", help="load deterministic demo data")
    defaults = seed.SeedSize()
    for flag in SEED_FLAGS:
        seed_cmd.add_argument(
            "--" + flag.replace("_", "-"),
            type=int,
            default=getattr(defaults, flag),
            help=f"default: {getattr(defaults, flag)}",
        )
    seed_cmd.add_argument("--replace", action="store_true", help="delete existing data first")
    seed_cmd.add_argument(
        "--allow-production",
        action="store_true",
        help="seed even with ENVIRONMENT=production (the accounts get no usable password)",
    )
    seed_cmd.set_defaults(run=run_seed)
    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", type=Path, default=schema_file)
    export.set_defaults(run=run_export)


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate the database to ``--revision``."""

    async def upgrade() -> None:
        async with command_engine(settings) as engine:
            await migrate.upgrade(engine, args.revision)

    asyncio.run(upgrade())
    print(f"migrated {shown_url(settings.database_url)} to {args.revision}")
    return 0


def run_seed(settings: Settings, args: argparse.Namespace) -> int:
    """Load demo data; refused in production unless ``--allow-production``, and then the
    demo password is never set."""
    try:
        size = seed.SeedSize(**{name: getattr(args, name) for name in SEED_FLAGS})
    except ValueError as exc:  # e.g. --tags-per-post above --tags
        print(f"inkwell: seed: {exc}", file=sys.stderr)
        return 2
    if settings.is_production and not args.allow_production:
        print(
            "inkwell: seed refuses a production database (ENVIRONMENT=production): it loads "
            "demo data; pass --allow-production to load it anyway (with no usable password)",
            file=sys.stderr,
        )
        return 1

    async def load() -> seed.SeedReport:
        async with command_engine(settings) as engine:
            demo = not settings.is_production
            return await seed.seed(engine, size, replace=args.replace, demo_password=demo)

    try:
        report = asyncio.run(load())
    except seed.DatabaseNotEmpty as exc:
        print(f"seed: {exc}", file=sys.stderr)
        return 1
    print(
        f"seeded {report.users} users, {report.posts} posts, {report.comments} comments, "
        f"{report.tags} tags, {report.post_tags} post tags in {report.seconds:.1f} s"
    )
    return 0


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the schema's SDL to ``--output``."""
    from server import export_schema  # the app's module: imported only for this command

    args.output.write_text(export_schema(settings))
    print(f"wrote {args.output}")
    return 0
