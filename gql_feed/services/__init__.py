"""Services: the rules of the feed. They know nothing of GraphQL."""
