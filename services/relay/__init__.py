"""The outbox relay: publishes the api's spooled events to RabbitMQ, in order, with publisher confirms."""
