"""Finished spans, caught in memory by the OpenTelemetry SDK's own exporter.

OpenTelemetry lets a process install its tracer provider once. Every test that looks at
spans shares the one installed here, and empties the exporter before it starts: a test
of this process sees only its own spans. Tracing is suspended again when it ends, so the
tests that run after it in this process run untraced, as they would alone. (Servers in
other processes export over OTLP.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gql_feed.observability import tracing

_EXPORTER = InMemorySpanExporter()


def _installed() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The exporter every span of this process reaches, emptied for this test."""
    exporter = _installed()
    exporter.clear()
    tracing.suspend(False)
    try:
        yield exporter
    finally:
        tracing.suspend(True)
        exporter.clear()
