"""Prometheus metrics of live updates (served on ``/metrics``).

Source: prometheus-client docs, "Instrumenting" (Gauge, Counter, Histogram).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# With several worker processes (prometheus-client's multiprocess mode), the open
# subscriptions add up across live processes; each LISTEN connection is reported per process.
SUBSCRIPTIONS_ACTIVE = Gauge(
    "inkwell_subscriptions_active",
    "GraphQL subscriptions open in this process.",
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS_OVERFLOWED = Counter(
    "inkwell_subscriptions_overflowed",
    "Subscriptions ended because their client stopped reading while a whole queue of events came.",
)
SUBSCRIPTION_GAPS = Counter(
    "inkwell_subscription_gaps",
    "Subscription queues that overflowed while the client was reading: the events dropped "
    "were read back from the outbox.",
)
EVENTS_READ_BACK = Counter(
    "inkwell_events_read_back",
    "Events read from the outbox rather than received live: by this process after its "
    "LISTEN connection was down, or by a subscription resuming or closing a gap.",
    ["reason"],
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
EVENT_LAG = Histogram(
    "inkwell_subscription_event_lag_seconds",
    "From a committed event reaching this process to a subscriber's result for it being "
    "ready to send (queued behind earlier events, read and resolved), per subscriber.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
