"""`gql-feed serve` with tracing set up from the standard OTEL_* variables, for benchmarks.

gql_feed sets its tracing up at start from OTEL_* itself once `gql_feed.observability.setup`
exists; until then (and only for the benches) this does the same minimal thing before
handing over to the command: with `OTEL_TRACES_EXPORTER=otlp`, the SDK's tracer provider
(whose sampler the SDK reads from `OTEL_TRACES_SAMPLER`/`_ARG`) exporting in batches over
OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`; with anything else, nothing.

python bench/otel_serve.py serve --port 8000
"""

from __future__ import annotations

import importlib.util
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from gql_feed.cli import main

if __name__ == "__main__":
    sets_itself_up = importlib.util.find_spec("gql_feed.observability.setup") is not None
    if not sets_itself_up and os.environ.get("OTEL_TRACES_EXPORTER") == "otlp":
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    raise SystemExit(main())
