"""What a client sees: strawberry types, the context, and the policies on their fields."""
