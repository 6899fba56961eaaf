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

_suspended = False


def tracing_on() -> bool:
    """Whether spans started now go anywhere: a real provider is installed, and tracing
    is not suspended."""
    if _suspended:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def suspend(suspended: bool = True) -> None:
    """Turn this process's tracing off (or on again) while its provider stays installed.

    OpenTelemetry lets a process install a provider once and never remove it. A process
    that runs many applications one after another (the test suite) suspends tracing for
    those that must run untraced: with tracing on, events on the bus carry their trace
    context, and schemas get the tracing extension."""
    global _suspended
    _suspended = suspended
