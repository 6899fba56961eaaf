"""Prometheus metrics of live delivery, in prometheus_client's default registry.

The gauges are read from the running `LiveServer` when scraped (`set_function`), so
keeping them right costs nothing on the subscribe and unsubscribe paths. Counters and
histograms are updated once per event or per group, never per subscriber.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("gql_feed_live_connections", "Open live WebSocket connections.")
SUBSCRIPTIONS = Gauge("gql_feed_live_subscriptions", "Active postEvents subscriptions.")
GROUPS = Gauge(
    "gql_feed_live_groups", "Groups of identical subscriptions, each executed once per event."
)
FRAMES_SENT = Counter("gql_feed_live_frames", "Event frames written to subscribers.")
EVENTS_FANNED_OUT = Counter("gql_feed_live_events", "Events fanned out to live subscribers.")
FLUSH_SECONDS = Histogram(
    "gql_feed_live_flush_seconds",
    "Time to write, in one flush, the frames that waited for their sockets.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DIRECT_FRAMES = Counter(
    "gql_feed_live_direct_frames", "Frames written straight to a socket's transport."
)
DIRECT_WRITES = Counter(
    "gql_feed_live_direct_writes",
    "Transport writes of those frames: each carries every frame a socket had waiting.",
)
SLOW_CONSUMERS = Counter(
    "gql_feed_live_slow_consumers", "Connections closed with 1013 for falling behind."
)
FANOUT_SECONDS = Histogram(
    "gql_feed_live_fanout_seconds",
    "Time to execute one event and hand it to every local subscriber's connection "
    "(direct writes then leave in a flush: gql_feed_live_flush_seconds).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DELIVERY_LAG_SECONDS = Histogram(
    "gql_feed_live_delivery_lag_seconds",
    "From the hub receiving an event to its last local frame being handed on.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def bind(
    connections: Callable[[], float],
    subscriptions: Callable[[], float],
    groups: Callable[[], float],
) -> None:
    """Point the gauges at a running server's counts."""
    CONNECTIONS.set_function(connections)
    SUBSCRIPTIONS.set_function(subscriptions)
    GROUPS.set_function(groups)


def unbind() -> None:
    bind(lambda: 0.0, lambda: 0.0, lambda: 0.0)
