"""``INSERT ... ON CONFLICT DO NOTHING``: rows that concurrent transactions may insert at once
(a tag two posts create, an email two registrations claim) are inserted once, and the other
transactions find the row there instead of failing.

PostgreSQL makes a second inserter wait for the first transaction and then skips the row, so
it is there to read afterwards; SQLite runs one writer at a time.
Source: PostgreSQL docs, "INSERT: ON CONFLICT Clause"; SQLAlchemy docs, "INSERT...ON CONFLICT
(Upsert)".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite

from db import models
from schema.context import Context


def insert_ignoring_conflicts(ctx: Context, table: Any, index_elements: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (index_elements) DO NOTHING`` for the session's database:
    a row that a concurrent transaction inserted first is skipped, not an error (PostgreSQL
    waits for that transaction to finish, so the row is there to read afterwards)."""
    dialect = sqlite if ctx.settings.is_sqlite else postgresql
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))


async def ensure_tags(ctx: Context, names: Iterable[str]) -> dict[str, models.Tag]:
    """The tags named ``names`` (normalised), created if new: two statements whatever the
    number of names, and safe against concurrent creation of the same tag (both callers get
    the one row).

    Names are inserted in sorted order: two transactions inserting overlapping sets then
    take the unique index's entries in the same order and cannot deadlock.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    Tag = models.Tag
    insert = insert_ignoring_conflicts(ctx, Tag, ["name"]).values([{"name": n} for n in wanted])

    async def work(session: Any) -> list[models.Tag]:
        await session.execute(insert)
        return list((await session.scalars(select(Tag).where(Tag.name.in_(wanted)))).all())

    tags = await ctx.run(work)
    return {tag.name: tag for tag in tags}
