"""Prometheus metrics of GraphQL operations, for whatever runs one, on any transport.

They sit in this low layer so that the engine, the transports and the live fan-out can
all report through one function, `observe_operation`, once an operation's outcome is
known. Labels stay few and fixed: the operation's type and its outcome, never its name
(client-chosen, of unbounded cardinality).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

OPERATION_TYPES = ("query", "mutation", "subscription")
# "error": the result carries errors (a refusal before execution included); "ok": none.
OUTCOMES = ("ok", "error")

OPERATIONS = Counter(
    "gql_feed_operations", "GraphQL operations run, by type and outcome.", ["type", "outcome"]
)
OPERATION_SECONDS = Histogram(
    "gql_feed_operation_duration_seconds",
    "Time to run an operation: a query's or mutation's result; a subscription's joining.",
    ["type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
for _type in OPERATION_TYPES:
    OPERATION_SECONDS.labels(_type)
    for _outcome in OUTCOMES:
        OPERATIONS.labels(_type, _outcome)


def observe_operation(operation_type: str, errors: Sequence[object] | None, seconds: float) -> None:
    """Count one operation of `operation_type` ("query", "mutation" or "subscription";
    anything else counts as "query", so a label's values stay the three)."""
    if operation_type not in OPERATION_TYPES:
        operation_type = "query"
    OPERATIONS.labels(operation_type, "error" if errors else "ok").inc()
    OPERATION_SECONDS.labels(operation_type).observe(seconds)
