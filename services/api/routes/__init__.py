"""The api's routes, one module per area."""
