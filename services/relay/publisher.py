"""Publishing to the cluster over one blocking connection, with or without publisher confirms."""

from __future__ import annotations

import contextlib
import logging
import time

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from services.common import broker
from services.common.config import Settings
from services.relay import metrics

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """No connection to any node, or it broke: nothing in flight can be counted as sent."""


class PublishRefused(Exception):
    """The broker is up but did not take this message (basic.nack, or returned as unroutable)."""


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self.node: str | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def ensure_connected(self) -> None:
        """Connect to some node, declare the topology and turn confirms on (when they are wanted)."""
        if self.connected and self._channel is not None and self._channel.is_open:
            return
        self.close()
        try:
            connection = broker.connect(self._settings)
            channel = connection.channel()
            broker.declare_topology(channel)
            if self._settings.publisher_confirms:
                channel.confirm_delivery()
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerUnavailable(f"cannot connect to the cluster: {exc!r}") from exc
        self._connection, self._channel = connection, channel
        self.node = _node_of(connection)
        metrics.RECONNECTS.inc()
        log.info("connected to broker node %s (confirms %s)", self.node, self._settings.publisher_confirms)

    def publish(self, body: bytes, routing_key: str) -> None:
        """Returns once the broker has confirmed the message (confirms on) or it left the socket (off)."""
        if self._channel is None:
            raise BrokerUnavailable("not connected")
        started = time.monotonic()
        try:
            self._channel.basic_publish(
                broker.EXCHANGE,
                routing_key,
                body,
                properties=broker.PERSISTENT,
                mandatory=self._settings.publisher_confirms,
            )
        except pika.exceptions.NackError as exc:
            metrics.PUBLISH_ERRORS.labels("nack").inc()
            raise PublishRefused(f"broker refused the message (nack) on {routing_key!r}") from exc
        except pika.exceptions.UnroutableError as exc:
            metrics.PUBLISH_ERRORS.labels("unroutable").inc()
            raise PublishRefused(f"no queue is bound for {routing_key!r}") from exc
        except (pika.exceptions.AMQPError, OSError) as exc:
            metrics.PUBLISH_ERRORS.labels("connection").inc()
            self.close()
            raise BrokerUnavailable(f"connection lost while publishing: {exc!r}") from exc
        if self._settings.publisher_confirms:
            metrics.CONFIRM_LATENCY.observe(time.monotonic() - started)

    def idle(self, seconds: float) -> None:
        """Wait without starving the connection's heartbeats."""
        if not self.connected:
            time.sleep(seconds)
            return
        try:
            self._connection.process_data_events(time_limit=seconds)
        except (pika.exceptions.AMQPError, OSError) as exc:
            log.warning("broker connection lost while idle: %r", exc)
            self.close()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                connection.close()


def _node_of(connection: pika.BlockingConnection) -> str | None:
    """The node this connection reached (pika keeps the winning parameters on its inner connection)."""
    params = getattr(getattr(connection, "_impl", None), "params", None)
    return getattr(params, "host", None)
