"""Live updates: events that committed transactions publish, and the brokers that fan them
out to GraphQL subscriptions (in-process on SQLite, LISTEN/NOTIFY across processes on
PostgreSQL)."""

from schema.live.broker import Broker, InProcessBroker
from schema.live.events import Event, EventKind
from schema.live.subscription import Delivery, SubscriptionOverflow

__all__ = ["Broker", "Delivery", "Event", "EventKind", "InProcessBroker", "SubscriptionOverflow"]
