"""``extensions.sql``: what an operation cost the database, for people in the playground."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from schema.context import Context


class SqlStatsExtension(SchemaExtension):
    """Counts the operation's SQL statements and their time, and reports them as
    ``extensions.sql = {"statements": int, "durationMs": float}``. Enabled by the
    ``SQL_STATS`` setting (on in development by default)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        token = context.sql.bind() if isinstance(context, Context) else None
        try:
            yield
        finally:
            if token is not None:
                context.sql.unbind(token)

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            return {}
        sql = context.sql
        return {"sql": {"statements": sql.statements, "durationMs": round(sql.duration_ms, 3)}}
