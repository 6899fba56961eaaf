"""Subscriptions over plain HTTP: SSE (both graphql-sse modes) and Apollo multipart."""
