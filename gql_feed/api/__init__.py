"""The GraphQL layer: types, operations and context. Thin: it translates to service calls."""
