"""Prometheus metrics of live updates (served on ``/metrics``).

Source: prometheus-client docs, "Instrumenting" (Gauge, Counter).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# With several worker processes (prometheus-client's multiprocess mode), the open
# subscriptions add up across live processes; each LISTEN connection is reported per process.
SUBSCRIPTIONS_ACTIVE = Gauge(
    "inkwell_subscriptions_active",
    "GraphQL subscriptions open in this process.",
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_OVERFLOWED = Counter(
    "inkwell_subscriptions_overflowed",
    "Subscriptions ended because their subscriber fell a whole queue behind.",
)
EVENTS_RECEIVED = Counter(
    "inkwell_events_received", "Committed events this process fanned out, by kind.", ["kind"]
)
LISTENER_CONNECTED = Gauge(
    "inkwell_event_listener_connected",
    "1 while this process's LISTEN connection to PostgreSQL is up (0 on SQLite).",
    multiprocess_mode="liveall",
)
LISTENER_RECONNECTS = Counter(
    "inkwell_event_listener_reconnects", "Times the LISTEN connection was re-established."
)
