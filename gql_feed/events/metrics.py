"""Prometheus metrics of the event path, served at /metrics (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_PUBLISHED = Counter(
    "gql_feed_events_published_total", "Events this process committed and published"
)
PUBLISH_FAILURES = Counter(
    "gql_feed_bus_publish_failures_total",
    "Publishes that failed; the event log still has them and every process catches up",
)
EVENTS_RECEIVED = Counter(
    "gql_feed_events_received_total", "Events this process's hub handed to its subscribers"
)
EVENTS_CAUGHT_UP = Counter(
    "gql_feed_events_caught_up_total", "Events read from the log because the bus did not bring them"
)
EVENTS_UNREADABLE = Counter(
    "gql_feed_events_unreadable_total",
    "Events skipped because their payload is of a version this process cannot read",
)
BUS_RECONNECTS = Counter("gql_feed_bus_reconnects_total", "Times the bus subscription was re-made")
DELIVERY_LAG = Histogram(
    "gql_feed_event_delivery_lag_seconds",
    "From the change's commit time to this process's hub receiving the event",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
