"""Prometheus metrics of GraphQL operations (served on ``/metrics``), fed one ``Operation``
at a time by ``observe``.

Every label has a bounded set of values: operation types, operation names as
``schema.telemetry.names`` bounds them, outcomes, error codes (Inkwell's own). With several
worker processes (prometheus-client's multiprocess mode) counters and histograms add up over
every worker that ever ran, so a restarted worker takes nothing back.

The label children are kept per combination, so an operation costs two dictionary look-ups
and the increments, not ``labels()`` each time.
Source: prometheus-client docs, "Instrumenting" (Counter, Histogram, labels) and
"Multiprocess Mode"; Prometheus docs, "Histograms and summaries".
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

from schema.telemetry.operation import Operation

#: Seconds: from a millisecond (a cached read) to the request timeout's neighbourhood.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: SQL statements per operation: a batched read costs one per nesting level.
STATEMENT_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128)

REQUESTS = Counter(
    "inkwell_graphql_requests",
    "GraphQL requests (HTTP) and WebSocket operations, by operation type (unknown: no "
    "operation was read), operation name (bounded: anonymous, other, unknown) and outcome "
    "(ok, client_error, server_error).",
    ["type", "name", "outcome"],
)
DURATION = Histogram(
    "inkwell_graphql_request_duration_seconds",
    "Time from a request's arrival to its response's end (a WebSocket operation: its "
    "execution), by operation type; subscriptions, which last as long as the client "
    "follows them, are left out.",
    ["type"],
    buckets=LATENCY_BUCKETS,
)
STATEMENTS = Histogram(
    "inkwell_graphql_sql_statements",
    "SQL statements one operation ran, by operation type.",
    ["type"],
    buckets=STATEMENT_BUCKETS,
)
ERRORS = Counter(
    "inkwell_graphql_errors",
    "GraphQL errors sent to clients, by extensions.code (an operation's repeated code "
    "counts once).",
    ["code"],
)

#: Children by label values, made on first use.
_requests: dict[tuple[str, str, str], Any] = {}
_durations: dict[str, Any] = {}
_statements: dict[str, Any] = {}
_errors: dict[str, Any] = {}


def observe(operation: Operation) -> None:
    """Count ``operation`` (ended: its duration and status known)."""
    kind = operation.kind or "unknown"
    key = (kind, operation.name_label, operation.outcome)
    requests = _requests.get(key)
    if requests is None:
        requests = _requests[key] = REQUESTS.labels(*key)
    requests.inc()
    if kind != "subscription":
        duration = _durations.get(kind)
        if duration is None:
            duration = _durations[kind] = DURATION.labels(kind)
        duration.observe(operation.duration_ms / 1000.0)
    if operation.kind is not None:
        statements = _statements.get(kind)
        if statements is None:
            statements = _statements[kind] = STATEMENTS.labels(kind)
        statements.observe(operation.sql_statements)
    for code in operation.error_codes:
        errors = _errors.get(code)
        if errors is None:
            errors = _errors[code] = ERRORS.labels(code)
        errors.inc()
