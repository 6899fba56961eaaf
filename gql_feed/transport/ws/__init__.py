"""GraphQL over WebSocket: graphql-transport-ws and the legacy graphql-ws, one module each."""
