"""The worker: consumes events from RabbitMQ into effects, and runs the background email jobs."""
