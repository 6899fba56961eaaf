"""Prometheus metrics of live delivery, in prometheus_client's default registry.

The gauges are read from the running `LiveServer` when scraped (`set_function`, and
`BY_TRANSPORT`, which walks the groups' members then), so keeping them right costs
nothing on the subscribe and unsubscribe paths. Counters and histograms are updated
once per event or per group, never per subscriber (but for the count of subscriptions
ended, once per subscription).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


class EndReason(StrEnum):
    """Why a subscription ended: the `reason` label of `SUBSCRIPTIONS_ENDED`."""

    COMPLETE = "complete"  # the server ended it (its resume point left the log)
    CLIENT = "client"  # the client completed it, or went away
    AUTH_EXPIRY = "auth_expiry"  # its connection's token expired (4440)
    SLOW_CONSUMER = "slow_consumer"  # its connection fell behind (1013)
    SHUTDOWN = "shutdown"  # the server is stopping (1001)
    ERROR = "error"  # its connection broke the protocol, or the server failed (44xx, 4500)


SUBSCRIPTIONS_ENDED = Counter(
    "gql_feed_live_subscriptions_ended", "postEvents subscriptions ended, by why.", ["reason"]
)
for _reason in EndReason:
    SUBSCRIPTIONS_ENDED.labels(_reason.value)

TRANSPORTS = ("websocket", "sse", "multipart")
# What each transport holds: (subscriptions, groups with one of its subscriptions at least).
TransportCounts = Mapping[str, tuple[int, int]]


class ByTransport(Collector):
    """Subscriptions and groups by transport, read when scraped from the counts the
    groups keep as members join and leave (`Groups.by_transport`)."""

    def __init__(self) -> None:
        self.counts: Callable[[], TransportCounts] | None = None

    def collect(self) -> Iterator[Metric]:
        subscriptions = GaugeMetricFamily(
            "gql_feed_live_transport_subscriptions",
            "Active postEvents subscriptions, by transport.",
            labels=["transport"],
        )
        groups = GaugeMetricFamily(
            "gql_feed_live_transport_groups",
            "Groups with a subscription over the transport (a group may serve several).",
            labels=["transport"],
        )
        counts = self.counts() if self.counts is not None else {}
        for transport in TRANSPORTS:
            held, grouped = counts.get(transport, (0, 0))
            subscriptions.add_metric([transport], held)
            groups.add_metric([transport], grouped)
        yield subscriptions
        yield groups


BY_TRANSPORT = ByTransport()
REGISTRY.register(BY_TRANSPORT)


def bind(
    connections: Callable[[], float],
    subscriptions: Callable[[], float],
    groups: Callable[[], float],
    by_transport: Callable[[], TransportCounts] | None = None,
) -> None:
    """Point the gauges at a running server's counts."""
    CONNECTIONS.set_function(connections)
    SUBSCRIPTIONS.set_function(subscriptions)
    GROUPS.set_function(groups)
    BY_TRANSPORT.counts = by_transport


def unbind() -> None:
    bind(lambda: 0.0, lambda: 0.0, lambda: 0.0)
