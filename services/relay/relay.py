"""The relay loop: outbox -> broker, in order, marking an event sent only once the broker has it.

With publisher confirms an event counts as sent after the broker's ack; a nack, an unroutable
return or a broken connection leaves it in the outbox, and the relay backs off and replays from
its cursor. A bulk event the bounded bulk queue refuses is moved to a deferred stream and retried
later, so one full queue neither loses it nor holds up ordinary traffic. With confirms off the
cursor moves as soon as basic.publish returns: what the broker never stored is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from services.common.backoff import Backoff
from services.common.config import Settings
from services.common.failpoints import FailpointCache
from services.relay import metrics
from services.relay.outbox import BatchProgress, Outbox, to_entry
from services.relay.publisher import BrokerUnavailable, Publisher, PublishRefused

log = logging.getLogger(__name__)

BATCH = 500
DEFERRED_BATCH = 100
READ_BLOCK_MS = 250
GAUGE_INTERVAL_S = 1.0


class Relay:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self._settings = settings
        self._outbox = Outbox(client)
        self._publisher = Publisher(settings)
        self._failpoints = FailpointCache(client)
        self._backoff = Backoff(base=0.2, cap=5.0)
        self._deferred_backoff = Backoff(base=0.2, cap=5.0)
        self._deferred_due = 0.0
        self._stop = threading.Event()
        self._status: dict[str, Any] = {
            "last_error": None,
            "last_error_at": None,
            "paused": False,
            "backlog": {},
        }
        self._gauges_at = 0.0

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {"connected": self._publisher.connected, "node": self._publisher.node, **self._status}

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh_gauges()
                if self._failpoints.get("relay.pause"):
                    self._set_paused(True)
                    self._publisher.idle(0.2)
                    continue
                self._set_paused(False)
                self._publisher.ensure_connected()
                self._publish_deferred()
                if not self._publish_batch():
                    self._publisher.idle(0.05)
                self._backoff.reset()
            except Exception as exc:  # broker, Redis or a bug: the relay backs off and keeps its events
                self._status["last_error"] = f"{type(exc).__name__}: {exc}"
                self._status["last_error_at"] = time.time()
                delay = self._backoff.next_delay()
                if isinstance(exc, BrokerUnavailable | PublishRefused | redis.RedisError):
                    log.warning("relay backing off %.2fs: %s", delay, exc)
                else:
                    log.exception("relay backing off %.2fs after an unexpected error", delay)
                self._publisher.idle(delay)
        self._publisher.close()

    def _publish_batch(self) -> bool:
        """Publish the next entries after the cursor; False when the outbox had nothing new."""
        cursor = self._outbox.cursor()
        # With the connection open, a blocking read would starve its heartbeats: keep it short.
        raw_entries = self._outbox.read_after(cursor, BATCH, block_ms=READ_BLOCK_MS)
        if not raw_entries:
            return False
        progress = BatchProgress()
        try:
            for stream_id, fields in raw_entries:
                entry = to_entry(stream_id, fields, self._settings)
                if entry is None:
                    log.error("outbox entry %s has no event field; skipping it", stream_id)
                    progress.mark_skipped(stream_id)
                    continue
                try:
                    self._publisher.publish(entry.body, entry.routing_key)
                except PublishRefused:
                    if not entry.deferrable:
                        raise  # ordinary events keep their order: retry this one after a backoff
                    progress.mark_deferred(stream_id, fields)
                    continue
                progress.mark_sent(stream_id)
        finally:
            # Whatever the broker took before a failure is recorded, so the replay starts after it.
            self._outbox.commit(progress)
            metrics.PUBLISHED.inc(len(progress.sent))
        return True

    def _publish_deferred(self) -> None:
        """Retry refused bulk events, oldest first, backing off while the bulk queue stays full."""
        if time.monotonic() < self._deferred_due:
            return
        sent: list[str] = []
        try:
            for stream_id, fields in self._outbox.read_deferred(DEFERRED_BATCH):
                entry = to_entry(stream_id, fields, self._settings)
                if entry is not None:
                    self._publisher.publish(entry.body, entry.routing_key)
                sent.append(stream_id)
            self._deferred_backoff.reset()
        except PublishRefused:
            self._deferred_due = time.monotonic() + self._deferred_backoff.next_delay()
        finally:
            self._outbox.commit_deferred(sent)
            metrics.PUBLISHED.inc(len(sent))

    def _set_paused(self, paused: bool) -> None:
        self._status["paused"] = paused
        metrics.PAUSED.set(1 if paused else 0)

    def _refresh_gauges(self) -> None:
        now = time.monotonic()
        if now - self._gauges_at < GAUGE_INTERVAL_S:
            return
        self._gauges_at = now
        backlog = self._outbox.backlog()
        metrics.OUTBOX_LENGTH.set(backlog["outbox_length"])
        metrics.DEFERRED_LENGTH.set(backlog["deferred_length"])
        metrics.BACKLOG_AGE.set(backlog["backlog_age_s"])
        self._status["backlog"] = backlog
