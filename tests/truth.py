"""Ground truth read straight from the database, to check what the API returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def table(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts (columns by name)."""
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


def sort_rows(
    rows: Sequence[dict[str, Any]], key: str | None, descending: bool = False
) -> list[dict[str, Any]]:
    """Rows in connection order: by ``key`` (NULLs last either way), then id, same direction."""
    if key is None:
        return sorted(rows, key=lambda r: r["id"], reverse=descending)
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    present.sort(key=lambda r: (r[key], r["id"]), reverse=descending)
    missing.sort(key=lambda r: r["id"], reverse=descending)
    return present + missing


def pk(global_id: str) -> int:
    """The primary key inside a global ID."""
    import base64

    return int(base64.b64decode(global_id).decode().split(":")[1])


async def digest(engine: AsyncEngine) -> str:
    """A hash of every row of every table: equal digests mean an unchanged database."""
    hasher = hashlib.sha256()
    async with engine.connect() as conn:
        for name, order in (
            ("users", "id"),
            ("posts", "id"),
            ("comments", "id"),
            ("tags", "id"),
            ("post_tags", "post_id, tag_id"),
        ):
            for row in await conn.execute(text(f"SELECT * FROM {name} ORDER BY {order}")):
                hasher.update(repr(tuple(row)).encode())
    return hasher.hexdigest()


async def count_rows(engine: AsyncEngine, sql: str, **params: Any) -> int:
    """The single integer ``sql`` returns (a ``SELECT count(*) ...``)."""
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())
