"""RabbitMQ topology and connection parameters for the 3-node cluster."""

from __future__ import annotations

import random

import pika
from pika.adapters.blocking_connection import BlockingChannel

from services.common import events
from services.common.config import Settings

EXCHANGE = "helpdesk.events"
EVENTS_QUEUE = "events.worker"  # ordinary traffic: one message per customer or agent message
# Bulk actions, when isolated: their events travel in batches (one message per BULK_BATCH_EVENTS
# events, so a flood costs the broker a hundredth of the messages), on a bounded queue that refuses
# publishes when full (the relay then holds the rest back).
BULK_QUEUE = "events.bulk.batches"
EVENTS_ROUTING_KEY = "event"
BULK_ROUTING_KEY = "bulk.batch"
BULK_BATCH_EVENTS = 100
BULK_QUEUE_MAX_LENGTH = 200  # messages: 20,000 events in batches


def connection_parameters(settings: Settings) -> list[pika.ConnectionParameters]:
    """One entry per node, shuffled so clients spread over the cluster and fail over."""
    credentials = pika.PlainCredentials(settings.amqp_user, settings.amqp_password)
    nodes = list(settings.amqp_nodes)
    random.shuffle(nodes)
    return [
        pika.ConnectionParameters(
            host=node,
            credentials=credentials,
            heartbeat=10,
            blocked_connection_timeout=30,
            connection_attempts=1,
            socket_timeout=3,
            stack_timeout=5,
        )
        for node in nodes
    ]


def connect(settings: Settings) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(settings))


def declare_topology(channel: BlockingChannel) -> None:
    """Idempotent: durable exchange, quorum queues replicated over the three nodes."""
    channel.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)
    channel.queue_declare(EVENTS_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(EVENTS_QUEUE, EXCHANGE, routing_key=EVENTS_ROUTING_KEY)
    channel.queue_declare(
        BULK_QUEUE,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-max-length": BULK_QUEUE_MAX_LENGTH,
            "x-overflow": "reject-publish",
        },
    )
    channel.queue_bind(BULK_QUEUE, EXCHANGE, routing_key=BULK_ROUTING_KEY)


def routing_key_for(is_bulk: bool, settings: Settings) -> str:
    """Bulk events get their own bounded path only when isolation is on."""
    return BULK_ROUTING_KEY if (is_bulk and settings.bulk_isolation) else EVENTS_ROUTING_KEY


PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json")
PERSISTENT_BATCH = pika.BasicProperties(
    delivery_mode=pika.DeliveryMode.Persistent, content_type=events.BATCH_CONTENT_TYPE
)
