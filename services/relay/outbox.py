"""The outbox stream as the relay sees it: entries to publish, where they go, and the bookkeeping
that marks them sent (cursor, deletion, counter) in one Redis transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from services.common import broker, keys
from services.common.config import Settings
from services.common.events import Event, EventError


@dataclass(frozen=True)
class OutboxEntry:
    stream_id: str
    body: bytes
    routing_key: str
    deferrable: bool  # the bounded bulk queue may refuse it; it can wait without blocking the rest


def stream_id_ms(stream_id: str) -> int:
    """Milliseconds since the epoch at which Redis appended the entry (the id's first half)."""
    millis, _, _ = stream_id.partition("-")
    return int(millis)


def age_seconds(stream_id: str, now: float) -> float:
    return max(0.0, now - stream_id_ms(stream_id) / 1000.0)


def to_entry(stream_id: str, fields: dict[str, str], settings: Settings) -> OutboxEntry | None:
    """Where an outbox entry must go; None when it carries no event at all.

    An entry whose event does not decode is still published, on the ordinary route: the
    worker rejects and counts it, so a bad event is visible downstream instead of silently dropped.
    """
    raw = fields.get("event")
    if raw is None:
        return None
    try:
        is_bulk = Event.decode(raw).is_bulk
    except EventError:
        is_bulk = False
    routing_key = broker.routing_key_for(is_bulk, settings)
    return OutboxEntry(
        stream_id, raw.encode(), routing_key, deferrable=routing_key == broker.BULK_ROUTING_KEY
    )


@dataclass
class BatchProgress:
    """What happened to a batch read from the outbox, in stream order, up to the first stop."""

    sent: list[str] = field(default_factory=list)
    deferred: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # entries without an event
    last_id: str | None = None  # the new cursor: every entry up to here is handled

    def mark_sent(self, stream_id: str) -> None:
        self.sent.append(stream_id)
        self.last_id = stream_id

    def mark_deferred(self, stream_id: str, fields: dict[str, str]) -> None:
        self.deferred.append((stream_id, fields))
        self.last_id = stream_id

    def mark_skipped(self, stream_id: str) -> None:
        self.skipped.append(stream_id)
        self.last_id = stream_id

    def handled_ids(self) -> list[str]:
        return [*self.sent, *(sid for sid, _ in self.deferred), *self.skipped]


class Outbox:
    """Reads the outbox after the cursor and records what the broker took."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def cursor(self) -> str:
        value = self._client.get(keys.OUTBOX_CURSOR)
        return value or "0-0"

    def read_after(self, cursor: str, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Entries with an id greater than the cursor, oldest first (waits up to block_ms for one;
        None: answers at once)."""
        answer = self._client.xread({keys.OUTBOX: cursor}, count=count, block=block_ms)
        return answer[0][1] if answer else []

    def commit(self, progress: BatchProgress) -> None:
        """Advance the cursor, move refused bulk events aside and delete handled entries, atomically."""
        if progress.last_id is None:
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.set(keys.OUTBOX_CURSOR, progress.last_id)
        for stream_id, fields in progress.deferred:
            pipe.xadd(keys.OUTBOX_DEFERRED, {**fields, "outbox_id": stream_id})
        pipe.xdel(keys.OUTBOX, *progress.handled_ids())
        if progress.sent:
            pipe.incrby(keys.OUTBOX_SENT, len(progress.sent))
        pipe.execute()

    def read_deferred(self, count: int) -> list[tuple[str, dict[str, str]]]:
        return self._client.xrange(keys.OUTBOX_DEFERRED, count=count)

    def commit_deferred(self, sent_ids: list[str]) -> None:
        if not sent_ids:
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.xdel(keys.OUTBOX_DEFERRED, *sent_ids)
        pipe.incrby(keys.OUTBOX_SENT, len(sent_ids))
        pipe.execute()

    def read_bulk(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """The oldest entries of the bulk lane (bulk isolation spools bulk events there)."""
        return self._client.xrange(keys.OUTBOX_BULK, count=count)

    def commit_bulk(self, sent_ids: list[str], refused: list[tuple[str, dict[str, str]]]) -> None:
        """Drop published entries from the bulk lane and move refused ones to the deferred stream."""
        handled = [*sent_ids, *(stream_id for stream_id, _ in refused)]
        if not handled:
            return
        pipe = self._client.pipeline(transaction=True)
        for stream_id, fields in refused:
            pipe.xadd(keys.OUTBOX_DEFERRED, {**fields, "outbox_id": stream_id})
        pipe.xdel(keys.OUTBOX_BULK, *handled)
        if sent_ids:
            pipe.incrby(keys.OUTBOX_SENT, len(sent_ids))
        pipe.execute()

    def lane_lengths(self) -> tuple[int, int]:
        """Entries waiting in the bulk lane and in the deferred stream."""
        pipe = self._client.pipeline(transaction=False)
        pipe.xlen(keys.OUTBOX_BULK)
        pipe.xlen(keys.OUTBOX_DEFERRED)
        bulk, deferred = pipe.execute()
        return int(bulk), int(deferred)

    def backlog(self, now: float | None = None) -> dict[str, float | int | None]:
        """Unsent entries (outbox and deferred) and the age of the oldest one, in seconds."""
        now = time.time() if now is None else now
        pipe = self._client.pipeline(transaction=False)
        pipe.xlen(keys.OUTBOX)
        pipe.xlen(keys.OUTBOX_DEFERRED)
        pipe.xrange(keys.OUTBOX, count=1)
        pipe.xrange(keys.OUTBOX_DEFERRED, count=1)
        length, deferred, first, first_deferred = pipe.execute()
        # A deferred entry's own id is younger than its event: its original outbox id counts.
        oldest_ids = [first[0][0]] if first else []
        if first_deferred:
            oldest_ids.append(first_deferred[0][1].get("outbox_id", first_deferred[0][0]))
        age = max((age_seconds(sid, now) for sid in oldest_ids), default=0.0)
        return {"outbox_length": length, "deferred_length": deferred, "backlog_age_s": round(age, 3)}
