"""Direct publishing to RabbitMQ: the vulnerable path, used only when the outbox is off.

This is the design the 2021 queue-cluster incident punished: the api writes to Redis, then
publishes to the broker itself, fire-and-forget (no publisher confirms). When the broker is
down every message request fails, so the api goes down with the broker, and an event lost in
flight is never replayed.

It honours the broker's flow control as publishers must: once the broker says a connection is
blocked (a resource alarm), the publisher waits for the unblock instead of writing into socket
buffers that the broker no longer reads; after the connection's blocked timeout it gives up. The
request publishing waits with it, as the requests of Help Scout's services did in 2017.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pika
import pika.exceptions

from services.common import broker
from services.common.config import Settings
from services.common.events import Event

# Give up on a node quickly: a request waits for at most one attempt per node.
_CONNECT_TIMEOUT_S = 1.0
_HANDSHAKE_TIMEOUT_S = 1.5

_BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)

_RETRY_PAUSE_S = 0.5

# Long-lived threads, so each keeps its connection between requests.
_PUBLISH_THREADS = 8
# How often a publisher waiting on a blocked connection reads the broker's frames (the unblock).
_BLOCKED_POLL_S = 0.25


class BrokerUnavailable(Exception):
    """The broker refused or could not take an event."""


class DirectPublisher:
    """One blocking connection per worker thread, opened lazily and reopened after a failure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local = threading.local()
        self._threads = ThreadPoolExecutor(_PUBLISH_THREADS, thread_name_prefix="broker-publish")

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish without confirms; raises BrokerUnavailable when the broker cannot be reached."""
        if events:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._threads, self._publish_blocking, list(events))

    async def probe(self) -> None:
        """Open and close a fresh connection; raises BrokerUnavailable when no node answers."""
        await asyncio.get_running_loop().run_in_executor(self._threads, self._probe_blocking)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _publish_blocking(self, events: list[Event]) -> None:
        """Publish, retrying for up to PUBLISH_RETRY_S while the broker is unreachable."""
        deadline = time.monotonic() + self._settings.publish_retry_s
        while True:
            try:
                return self._publish_once(events)
            except BrokerUnavailable:
                if time.monotonic() + _RETRY_PAUSE_S > deadline:
                    raise
                time.sleep(_RETRY_PAUSE_S)

    def _publish_once(self, events: list[Event]) -> None:
        sent = 0
        for attempt in (1, 2):
            channel, fresh = self._channel()
            try:
                while sent < len(events):
                    self._wait_while_blocked()
                    event = events[sent]
                    channel.basic_publish(
                        broker.EXCHANGE,
                        broker.routing_key_for(event.is_bulk, self._settings),
                        event.encode(),
                        broker.PERSISTENT,
                    )
                    sent += 1
                return
            except _BROKER_ERRORS as exc:
                self._forget_connection()
                # A connection kept since an earlier request may simply have gone stale
                # (broker restart, missed heartbeats): one fresh try, then give up.
                if fresh or attempt == 2:
                    raise BrokerUnavailable(f"publishing to RabbitMQ failed: {_describe(exc)}") from None

    def _wait_while_blocked(self) -> None:
        """Read the broker's pending frames; while it holds this connection blocked, wait.

        pika closes a connection blocked longer than its `blocked_connection_timeout`; the
        publish then fails like any other broker error."""
        connection = self._local.connection
        connection.process_data_events(time_limit=0)
        while self._local.blocked:
            connection.process_data_events(time_limit=_BLOCKED_POLL_S)

    def _channel(self) -> tuple[pika.adapters.blocking_connection.BlockingChannel, bool]:
        channel = getattr(self._local, "channel", None)
        connection = getattr(self._local, "connection", None)
        if channel is not None and channel.is_open and connection is not None and connection.is_open:
            return channel, False
        self._forget_connection()
        connection = self._connect()
        self._local.blocked = False
        connection.add_on_connection_blocked_callback(lambda *_: setattr(self._local, "blocked", True))
        connection.add_on_connection_unblocked_callback(lambda *_: setattr(self._local, "blocked", False))
        try:
            channel = connection.channel()
            broker.declare_topology(channel)
        except _BROKER_ERRORS as exc:
            _close_quietly(connection)
            raise BrokerUnavailable(f"RabbitMQ refused the channel: {_describe(exc)}") from None
        self._local.connection, self._local.channel = connection, channel
        return channel, True

    def _connect(self) -> pika.BlockingConnection:
        try:
            return pika.BlockingConnection(self._parameters())
        except _BROKER_ERRORS as exc:
            nodes = ", ".join(self._settings.amqp_nodes)
            raise BrokerUnavailable(f"no RabbitMQ node answered ({nodes}): {_describe(exc)}") from None

    def _parameters(self) -> list[pika.ConnectionParameters]:
        parameters = broker.connection_parameters(self._settings)
        for entry in parameters:
            entry.socket_timeout = _CONNECT_TIMEOUT_S
            entry.stack_timeout = _HANDSHAKE_TIMEOUT_S
        return parameters

    def _probe_blocking(self) -> None:
        _close_quietly(self._connect())

    def _forget_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        self._local.blocked = False
        if connection is not None:
            _close_quietly(connection)


def _close_quietly(connection: pika.BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except _BROKER_ERRORS:
        pass


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
