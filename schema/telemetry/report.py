"""Where an ended operation goes: its log line and its metrics, from the one record."""

from __future__ import annotations

from schema.telemetry import logs, metrics
from schema.telemetry.operation import Operation


def finish(operation: Operation) -> None:
    """Stop ``operation``'s clock and hand it to the log and the metrics. A request to the
    GraphQL path that ran no operation and was not refused (GraphiQL's page) is a GraphQL
    request for neither: it is logged at DEBUG and not counted."""
    operation.end()
    logs.log_operation(operation)
    if operation.kind is not None or operation.error_codes or (operation.status or 0) >= 400:
        metrics.observe(operation)
