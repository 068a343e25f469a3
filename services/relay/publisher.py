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
        self._batch: _BatchChannel | None = None  # the bulk lane: many publishes, one wait for confirms
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
        self._connection, self._channel, self._batch = connection, channel, None
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

    def publish_batch(
        self, bodies: list[bytes], routing_key: str, properties: pika.BasicProperties = broker.PERSISTENT
    ) -> list[bool]:
        """Publish many messages, then wait once for all their confirms: True where the broker took
        the message, False where it refused it (a full reject-publish queue nacks).

        Raises BrokerUnavailable when the connection breaks or the confirms do not come in time:
        none of the batch counts as sent then (a replay may duplicate; consumers dedupe)."""
        if self._connection is None or self._channel is None:
            raise BrokerUnavailable("not connected")
        try:
            if self._batch is None:
                self._batch = _BatchChannel(self._connection, self._settings.publisher_confirms)
            outcomes = self._batch.publish(bodies, routing_key, properties)
        except (pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            metrics.PUBLISH_ERRORS.labels("connection").inc()
            self.close()
            raise BrokerUnavailable(f"connection lost while publishing a batch: {exc!r}") from exc
        refused = outcomes.count(False)
        if refused:
            metrics.PUBLISH_ERRORS.labels("nack").inc(refused)
        return outcomes

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
        connection, self._connection, self._channel, self._batch = self._connection, None, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already broken: nothing left to release
                connection.close()


def _node_of(connection: pika.BlockingConnection) -> str | None:
    """The node this connection reached (pika keeps the winning parameters on its inner connection)."""
    params = getattr(getattr(connection, "_impl", None), "params", None)
    return getattr(params, "host", None)


class _BatchChannel:
    """A second channel in confirm mode whose confirms are tracked by delivery tag.

    pika's blocking channel waits for each confirm before the next publish (one round trip, and one
    quorum-queue commit, per message). Here the confirm callbacks go to the underlying asynchronous
    channel, so a whole batch is in flight at once and the broker confirms it in a few frames.
    """

    CONFIRM_TIMEOUT_S = 30.0

    def __init__(self, connection: pika.BlockingConnection, confirms: bool) -> None:
        self._connection = connection
        self._channel = connection.channel()
        self._confirms = confirms
        self._next_tag = 1
        self._undecided: set[int] = set()
        self._outcomes: dict[int, bool] = {}
        if confirms:
            selected: list[bool] = []
            # The asynchronous channel under the blocking one takes per-tag confirm callbacks.
            self._channel._impl.confirm_delivery(
                ack_nack_callback=self._on_confirm, callback=lambda _frame: selected.append(True)
            )
            self._wait(lambda: bool(selected))

    def publish(self, bodies: list[bytes], routing_key: str, properties: pika.BasicProperties) -> list[bool]:
        first = self._next_tag
        for body in bodies:
            # Tracked before the publish: its confirm may arrive while the publish is being flushed.
            self._undecided.add(self._next_tag)
            self._next_tag += 1
            self._channel.basic_publish(broker.EXCHANGE, routing_key, body, properties=properties)
        if not self._confirms:
            self._undecided.clear()
            return [True] * len(bodies)
        self._wait(lambda: not self._undecided)
        return [self._outcomes.pop(tag) for tag in range(first, self._next_tag)]

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tag = method.delivery_tag
        tags = [t for t in self._undecided if t <= tag] if method.multiple else [tag]
        for decided in tags:
            self._undecided.discard(decided)
            self._outcomes[decided] = acked

    def _wait(self, done: object) -> None:
        deadline = time.monotonic() + self.CONFIRM_TIMEOUT_S
        while not done():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise TimeoutError("the broker did not confirm the batch in time")
            self._connection.process_data_events(time_limit=0.05)
