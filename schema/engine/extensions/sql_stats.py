"""``extensions.sql``: what an operation cost the database, for people in the playground."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from schema.context import Context


class SqlStatsExtension(SchemaExtension):
    """Reports the operation's SQL statements and their time as ``extensions.sql =
    {"statements": int, "durationMs": float}``. Enabled by the ``SQL_STATS`` setting (on in
    development by default). The counts are ``Context.sql``'s, which every schema's
    ``ObserveOperation`` (``schema.telemetry.extension``, outermost) binds for the whole
    operation: this extension only reads them."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            return {}
        sql = context.sql
        return {"sql": {"statements": sql.statements, "durationMs": round(sql.duration_ms, 3)}}
