"""Tracing set up from the standard OpenTelemetry environment, or not at all.

The server has no tracing settings of its own for where spans go: `OTEL_TRACES_EXPORTER`
(`otlp`, `console`, both comma-separated, or `none`, the default) turns it on, and the
SDK's own pieces read the rest of the standard variables themselves: the OTLP/HTTP
exporter its endpoint, headers and timeout (`OTEL_EXPORTER_OTLP_[TRACES_]*`), the tracer
provider its sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the batch
processor its queue and delay (`OTEL_BSP_*`), the resource `OTEL_RESOURCE_ATTRIBUTES`
and `OTEL_SERVICE_NAME` (`gql_feed` when neither names the service). docs/observability.md
lists them.

Without `OTEL_TRACES_EXPORTER` nothing is installed: the API's proxy tracer makes no
spans and `tracing_on()` is false, so the request path skips tracing entirely. A tracer
provider installed already (by a test, or by `opentelemetry-instrument`) is left as it
is, and used. Database and Redis calls get spans of their own (the official
SQLAlchemy and Redis instrumentations) only while some provider is installed.

The SDK's tracer provider and span processors, the exporter and the instrumentations
are imported only when tracing is on: a server without tracing starts without loading
them (nor protobuf); only the SDK's names of its environment variables are read here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)

from gql_feed.config import ConfigError
from gql_feed.observability.tracing import tracing_on

if TYPE_CHECKING:
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "gql_feed"
# The SDK's name for a service nobody named (`unknown_service:python3`, say).
UNNAMED_SERVICE = "unknown_service"
# The only OTLP transport installed (the gRPC exporter would pull in grpcio).
OTLP_PROTOCOL = "http/protobuf"


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names (none by default); ConfigError for a
    name or an OTLP protocol this server does not ship, so that `gql-feed serve` refuses
    them at once, as it refuses a wrong setting."""
    names = []
    for part in environ.get(OTEL_TRACES_EXPORTER, "none").split(","):
        name = part.strip().lower()
        if name in ("", "none"):
            continue
        if name not in ("otlp", "console"):
            raise ConfigError(
                f"{OTEL_TRACES_EXPORTER}={name!r}: this server exports traces with "
                "'otlp' (OTLP over HTTP), 'console' or 'none'."
            )
        names.append(name)
    if "otlp" in names:
        protocol = environ.get(
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            environ.get(OTEL_EXPORTER_OTLP_PROTOCOL, OTLP_PROTOCOL),
        )
        if protocol.strip().lower() != OTLP_PROTOCOL:
            raise ConfigError(
                f"OTLP over {protocol!r} is not installed: unset "
                f"{OTEL_EXPORTER_OTLP_PROTOCOL} or set it to {OTLP_PROTOCOL}."
            )
    return names


def exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters the environment names, each configured by its own variables."""
    names = exporter_names(environ)
    if not names:
        return []
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return [
        OTLPSpanExporter() if name == "otlp" else ConsoleSpanExporter()  # OTLP reads its env
        for name in names
    ]


def service_resource() -> Resource:
    """The SDK's resource from the environment, named `gql_feed` unless it names itself."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, UNNAMED_SERVICE)).startswith(UNNAMED_SERVICE):
        return detected.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return detected


class Tracing:
    """Tracing for one application: the provider it installed (if any), to flush and shut
    down when the application stops, and the instrumentations it switched on."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._sqlalchemy: SQLAlchemyInstrumentor | None = None
        self._redis: RedisInstrumentor | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Tracing:
        """Install a tracer provider when the environment asks for one and none is
        installed yet: at start-up, before the schema is built (its extensions depend on
        whether tracing is on)."""
        chosen = exporters(os.environ if environ is None else environ)
        if not chosen or tracing_on():
            return cls()
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=service_resource())  # reads the sampler's variables
        for exporter in chosen:
            provider.add_span_processor(BatchSpanProcessor(exporter))  # reads OTEL_BSP_*
        trace.set_tracer_provider(provider)
        return cls(provider)

    def instrument(self, engines: Sequence[Engine]) -> None:
        """Spans for the database's statements and the Redis commands, while tracing is on.

        Each instrumentor patches process-wide and only once: `close` undoes it, so that
        the next application in this process (the tests make many) can do it again."""
        if not tracing_on():
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        sqlalchemy = SQLAlchemyInstrumentor()
        if not sqlalchemy.is_instrumented_by_opentelemetry:
            # Its declared range ends below SQLAlchemy 2.1, whose engine events it uses
            # unchanged: tests/observability checks that statements still become spans.
            sqlalchemy.instrument(engines=list(engines), skip_dep_check=True)
            if sqlalchemy.is_instrumented_by_opentelemetry:
                self._sqlalchemy = sqlalchemy
        redis = RedisInstrumentor()
        if not redis.is_instrumented_by_opentelemetry:
            redis.instrument()
            if redis.is_instrumented_by_opentelemetry:
                self._redis = redis

    def close(self) -> None:
        """Undo the instrumentation, and flush and shut down the provider installed here."""
        if self._sqlalchemy is not None:
            self._sqlalchemy.uninstrument()
            self._sqlalchemy = None
        if self._redis is not None:
            self._redis.uninstrument()
            self._redis = None
        if self.provider is not None:
            self.provider.shutdown()
