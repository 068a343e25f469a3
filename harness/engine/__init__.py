"""The run engine: phases, scenarios, waiting. It acts and marks; it never judges."""
