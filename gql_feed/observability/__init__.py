"""What an operator sees of a running server: OpenTelemetry traces and metrics.

Nothing here is on unless the standard `OTEL_*` variables say where to send it.
"""
