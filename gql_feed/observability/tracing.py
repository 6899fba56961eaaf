"""The tracer gql_feed's own spans come from, and whether anyone is listening.

`TRACER` is the API's proxy: it costs nothing until a tracer provider is installed (by
the application's start-up when `OTEL_*` asks for one, or by a test), and from then on it
hands out that provider's spans. Hot paths ask `tracing_on()` first, so that with tracing
off they do not even build a span's attributes.
"""

from __future__ import annotations

from opentelemetry import trace

TRACER_NAME = "gql_feed"
TRACER = trace.get_tracer(TRACER_NAME)


def tracing_on() -> bool:
    """Whether spans started now go anywhere (a real provider is installed)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
