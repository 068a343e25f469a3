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

from services.common import broker
from services.common.backoff import Backoff
from services.common.config import Settings
from services.common.events import encode_batch
from services.common.failpoints import FailpointCache
from services.relay import metrics
from services.relay.outbox import BatchProgress, Outbox, OutboxEntry, to_entry
from services.relay.publisher import BrokerUnavailable, Publisher, PublishRefused

log = logging.getLogger(__name__)

BATCH = 500
DEFERRED_BATCH = 500
# Bulk events per turn of the loop: ordinary events never wait behind more than one chunk.
BULK_CHUNK = 500
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
        self._bulk_busy = False

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
                # While bulk work waits, the ordinary read does not block: it would idle the bulk lane.
                ordinary = self._publish_batch(block=not self._bulk_busy)
                self._bulk_busy = self._publish_bulk_chunk()
                if not (ordinary or self._bulk_busy):
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

    def _publish_batch(self, block: bool = True) -> bool:
        """Publish the next entries after the cursor; False when the outbox had nothing new."""
        cursor = self._outbox.cursor()
        # With the connection open, a blocking read would starve its heartbeats: keep it short.
        raw_entries = self._outbox.read_after(cursor, BATCH, block_ms=READ_BLOCK_MS if block else None)
        if not raw_entries:
            return False
        progress = BatchProgress()
        try:
            # Consecutive entries with one route go out together and are confirmed together, in
            # stream order: one wait per run instead of a round trip (and a quorum commit) per event,
            # so a replay after a broker outage drains at the broker's pace, not the network's.
            run: list[tuple[str, dict[str, str], OutboxEntry]] = []
            for stream_id, fields in raw_entries:
                entry = to_entry(stream_id, fields, self._settings)
                if run and (entry is None or entry.routing_key != run[0][2].routing_key):
                    self._publish_run(run, progress)
                    run = []
                if entry is None:
                    log.error("outbox entry %s has no event field; skipping it", stream_id)
                    progress.mark_skipped(stream_id)
                    continue
                run.append((stream_id, fields, entry))
            if run:
                self._publish_run(run, progress)
        finally:
            # Whatever the broker took before a failure is recorded, so the replay starts after it.
            self._outbox.commit(progress)
            metrics.PUBLISHED.inc(len(progress.sent))
        return True

    def _publish_run(
        self, run: list[tuple[str, dict[str, str], OutboxEntry]], progress: BatchProgress
    ) -> None:
        """Publish entries sharing a route and record, in order, what the broker took."""
        routing_key = run[0][2].routing_key
        outcomes = self._publisher.publish_batch([entry.body for _, _, entry in run], routing_key)
        for (stream_id, fields, entry), taken in zip(run, outcomes, strict=True):
            if taken:
                progress.mark_sent(stream_id)
            elif entry.deferrable:
                progress.mark_deferred(stream_id, fields)
            else:  # ordinary events keep their order: retry from this one after a backoff
                raise PublishRefused(f"broker refused an event on {routing_key!r} (nack)")

    def _publish_deferred(self) -> None:
        """Retry refused bulk events in one confirmed batch, backing off while the bulk queue stays full."""
        if time.monotonic() < self._deferred_due:
            return
        entries = self._outbox.read_deferred(DEFERRED_BATCH)
        if not entries:
            return
        sent, refused = self._publish_lane(entries)
        self._outbox.commit_deferred(sent)
        metrics.PUBLISHED.inc(len(sent))
        self._after_lane(refused)

    def _publish_bulk_chunk(self) -> bool:
        """Publish the next chunk of the bulk lane; False when there was nothing to do.

        Backpressure: while refused bulk events wait in the deferred stream (the bounded bulk queue
        is full) no new chunk is taken, so the bulk producer slows to what the consumers drain."""
        bulk_waiting, deferred = self._outbox.lane_lengths()
        metrics.BULK_LANE_LENGTH.set(bulk_waiting)
        if not bulk_waiting or deferred or time.monotonic() < self._deferred_due:
            return False
        entries = self._outbox.read_bulk(BULK_CHUNK)
        sent, refused = self._publish_lane(entries)
        self._outbox.commit_bulk(sent, refused)
        metrics.PUBLISHED.inc(len(sent))
        self._after_lane(refused)
        return True

    def _publish_lane(
        self, entries: list[tuple[str, dict[str, str]]]
    ) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
        """Publish entries per route, bulk events packed into batch messages; the ids the broker
        took, and the entries it refused (a refused batch refuses each of its events)."""
        sent: list[str] = []
        refused: list[tuple[str, dict[str, str]]] = []
        routes: dict[str, list[tuple[str, dict[str, str], bytes]]] = {}
        for stream_id, fields in entries:
            entry = to_entry(stream_id, fields, self._settings)
            if entry is None:
                sent.append(stream_id)  # nothing to publish: it only leaves the lane
                continue
            routes.setdefault(entry.routing_key, []).append((stream_id, fields, entry.body))
        for routing_key, lane in routes.items():
            if routing_key == broker.BULK_ROUTING_KEY:
                size, properties = broker.BULK_BATCH_EVENTS, broker.PERSISTENT_BATCH
            else:
                size, properties = 1, broker.PERSISTENT
            messages = [lane[start : start + size] for start in range(0, len(lane), size)]
            bodies = [
                encode_batch([body for _, _, body in message]) if size > 1 else message[0][2]
                for message in messages
            ]
            outcomes = self._publisher.publish_batch(bodies, routing_key, properties)
            for message, taken in zip(messages, outcomes, strict=True):
                for stream_id, fields, _ in message:
                    if taken:
                        sent.append(stream_id)
                    else:
                        refused.append((stream_id, fields))
        return sent, refused

    def _after_lane(self, refused: list[tuple[str, dict[str, str]]]) -> None:
        if refused:
            self._deferred_due = time.monotonic() + self._deferred_backoff.next_delay()
        else:
            self._deferred_backoff.reset()

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
