"""Each subscription result names its event: ``extensions.eventId``, to resume after it."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension


class EventIds(SchemaExtension):
    """Adds ``{"eventId": "<id>"}`` to the ``extensions`` of a subscription's result for an
    event (the outbox id ``schema.live.stream.follow`` sets on the context while the result
    is made); a client passes the last one it received as ``afterEventId`` to resume. Other
    results get nothing. Strawberry asks every extension for its ``get_results`` once per
    result, so per event of a subscription.
    Source: Strawberry docs, "Schema extensions" (``get_results``); GraphQL spec, "Response
    Format" (``extensions`` is for implementors)."""

    def get_results(self) -> dict[str, Any]:
        event_id = getattr(self.execution_context.context, "event_id", None)
        return {"eventId": str(event_id)} if event_id else {}
