"""gql_feed: a real-time feed server speaking GraphQL over HTTP and WebSocket."""

__version__ = "0.1.0"
