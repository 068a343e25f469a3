"""The event consumer: RabbitMQ deliveries -> effects in Redis, across broker outages.

It connects through `broker.connect` (any of the three nodes), consumes the events queue and,
with bulk isolation, the bulk queue on a second channel. Deliveries are gathered while pika
dispatches them and applied in one Redis round trip per channel (a flood of 100,000s of bulk
events drains at Redis' pace, not one round trip per event); ordinary events are always applied
before bulk ones, so bulk work cannot crowd out ordinary messages. When the cluster goes away it
reconnects with jittered backoff for as long as it takes.

Acknowledgement: with `ack_after_work` the delivery is acked only after its effects are stored
(and nacked back to the queue when they fail); without it the worker consumes with auto-ack, so
the broker forgets each message as soon as it is sent and a dying worker loses what it held.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from services.common import broker
from services.common.backoff import Backoff
from services.common.config import Settings
from services.common.events import BATCH_CONTENT_TYPE, Event, EventError, decode_batch
from services.common.failpoints import FailpointCache
from services.worker import metrics
from services.worker.apply import EffectApplier

log = logging.getLogger(__name__)

POLL_S = 0.2
# Bulk messages in flight and applied together (each carries up to broker.BULK_BATCH_EVENTS
# events): enough to keep the lane draining fast, few enough that one round stays short, and
# ordinary events still go first in every round (see _flush).
BULK_PREFETCH = 5


class EventConsumer:
    def __init__(self, settings: Settings, applier: EffectApplier, failpoints: FailpointCache) -> None:
        self._settings = settings
        self._applier = applier
        self._failpoints = failpoints
        self._manual_ack = settings.ack_after_work
        self._stop = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._consumers: list[tuple[BlockingChannel, str]] = []
        # Deliveries dispatched but not yet applied, per channel (ordinary channel first).
        self._pending: dict[int, list[_Delivery]] = {}
        self._effects_backoff = Backoff(base=0.2, cap=5.0)
        self._cool_until = 0.0  # after a failed effect, hold consumption so a broken Redis is not hammered
        self.node: str | None = None
        self.counts = {"applied": 0, "duplicate": 0, "malformed": 0, "failed": 0}

    def stop(self) -> None:
        self._stop.set()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.is_open

    def run(self) -> None:
        reconnect = Backoff(base=0.2, cap=5.0)
        while not self._stop.is_set():
            try:
                self._connect()
                reconnect.reset()
                self._consume()
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning("broker connection lost or refused: %r", exc)
            finally:
                self._disconnect()
            if not self._stop.is_set():
                delay = reconnect.next_delay()
                log.info("reconnecting to the cluster in %.2fs", delay)
                self._stop.wait(delay)

    def _connect(self) -> None:
        self._connection = broker.connect(self._settings)
        params = getattr(getattr(self._connection, "_impl", None), "params", None)
        self.node = getattr(params, "host", None)
        metrics.BROKER_RECONNECTS.inc()
        metrics.BROKER_CONNECTED.set(1)
        log.info("connected to broker node %s (manual ack %s)", self.node, self._manual_ack)
        channel = self._connection.channel()
        broker.declare_topology(channel)
        channel.close()

    def _consume(self) -> None:
        while not self._stop.is_set():
            hold = bool(self._failpoints.get("worker.pause")) or time.monotonic() < self._cool_until
            if hold and self._consumers:
                self._cancel_consumers()
            elif not hold and not self._consumers:
                self._start_consumers()
            self._connection.process_data_events(time_limit=POLL_S)
            self._flush()

    def _start_consumers(self) -> None:
        queues = [(broker.EVENTS_QUEUE, self._settings.worker_prefetch)]
        if self._settings.bulk_isolation:
            queues.append((broker.BULK_QUEUE, BULK_PREFETCH))
        for queue, prefetch in queues:
            channel = self._connection.channel()
            channel.basic_qos(prefetch_count=prefetch)
            tag = channel.basic_consume(queue, self._on_delivery, auto_ack=not self._manual_ack)
            self._consumers.append((channel, tag))
            self._pending[channel.channel_number] = []

    def _cancel_consumers(self) -> None:
        self._flush()
        consumers, self._consumers = self._consumers, []
        for channel, tag in consumers:
            # Manual ack: pika nacks (requeues) what arrived but was not handled yet. Auto-ack: the
            # broker already counts those as done, so they are handled now rather than dropped.
            for method, properties, body in channel.basic_cancel(tag) or []:
                self._on_delivery(channel, method, properties, body)
            self._flush()
            channel.close()
        self._pending = {}

    def _disconnect(self) -> None:
        # Deliveries not yet applied go back to their queue with the connection (or, with
        # auto-ack, are lost with it, as before).
        connection, self._connection, self._consumers, self._pending = self._connection, None, [], {}
        metrics.BROKER_CONNECTED.set(0)
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):  # already broken
                connection.close()  # unacked deliveries go back to their queue

    def _on_delivery(self, channel: BlockingChannel, method: Any, properties: Any, body: bytes) -> None:
        delivery = _Delivery(
            channel, method.delivery_tag, properties.content_type == BATCH_CONTENT_TYPE, body
        )
        self._pending.setdefault(channel.channel_number, []).append(delivery)

    def _flush(self) -> None:
        """Apply every gathered delivery: one Redis round trip per channel, ordinary events first."""
        for number in list(self._pending):
            deliveries = self._pending.get(number)
            if deliveries:
                self._pending[number] = []
                self._apply_deliveries(deliveries)

    def _apply_deliveries(self, deliveries: list[_Delivery]) -> None:
        channel = deliveries[0].channel
        good: list[tuple[int, Event]] = []
        for delivery in deliveries:
            events = self._decode(delivery)
            if events:
                good.extend((delivery.tag, event) for event in events)
            elif self._manual_ack:
                # Redelivering a malformed event would only fail again: reject it for good.
                channel.basic_reject(delivery.tag, requeue=False)
        if not good:
            return
        try:
            slow_ms = self._failpoints.get("worker.slow_ms")
            if slow_ms:  # a slow downstream: the worker falls behind and a backlog builds
                time.sleep(float(slow_ms) * len(good) / 1000)
            if self._failpoints.get("worker.fail_effects"):
                raise RuntimeError("failpoint worker.fail_effects is set")
            outcomes = self._applier.apply_batch([event for _, event in good])
        except Exception as exc:
            metrics.EVENT_ERRORS.inc(len(good))
            self.counts["failed"] += len(good)
            self._cool_until = time.monotonic() + self._effects_backoff.next_delay()
            if self._manual_ack:
                log.warning("effects failed, %d events requeued: %s", len(good), exc)
                channel.basic_nack(good[-1][0], multiple=True, requeue=True)
            else:
                log.error("effects failed and %d events were auto-acked: they are lost: %s", len(good), exc)
            return
        if self._manual_ack:
            # One settlement for the whole batch: on a quorum queue every ack is a replicated log
            # entry, so acking one by one would bound the drain rate. Every earlier delivery of this
            # channel was settled in this batch or a previous one.
            channel.basic_ack(good[-1][0], multiple=True)
        self._effects_backoff.reset()
        for (_, event), outcome in zip(good, outcomes, strict=True):
            result = "applied" if outcome.applied else "duplicate"
            self.counts[result] += 1
            metrics.EVENTS.labels(event.type, result).inc()

    def _decode(self, delivery: _Delivery) -> list[Event]:
        """The delivery's events that can be applied; each one that cannot is logged and counted.

        A batch's good events are applied even beside a malformed line: one bad line must not
        lose a hundred good events."""
        if delivery.batch:
            events, problems = decode_batch(delivery.body)
        else:
            try:
                events, problems = [Event.decode(delivery.body)], []
            except EventError as exc:
                events, problems = [], [exc]
        applicable = []
        for event in events:
            try:
                self._applier.check(event)
            except EventError as exc:
                problems.append(exc)
            else:
                applicable.append(event)
        for problem in problems:
            log.error("rejecting malformed event: %s", problem)
            metrics.MALFORMED.inc()
            self.counts["malformed"] += 1
        return applicable


@dataclass(frozen=True)
class _Delivery:
    channel: BlockingChannel
    tag: int
    batch: bool  # several events, one per line (the bulk lane)
    body: bytes
