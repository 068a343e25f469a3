"""Built-in scenarios: a demonstration (worker-crash) and one module per incident."""
