"""Observing what the system produced: the worker's effects log, read as it grows.

Every entry becomes an observation in the history, keyed by message id (or event id for effects
that have no message, such as bulk updates). Kinds a scenario names as tallied (a flood's hundred
thousand bulk updates) are counted per second into the record's `effects` stream instead, so a
record stays small.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
import redis.exceptions

from harness.observe.probes import CANARY_PREFIX
from harness.record.history import History
from services.common import keys

# Entries per read: parsing one read holds the harness's event loop, and with it every latency
# the load is measuring, so a flood's hundred thousand effects are read a thousand at a time.
READ_CHUNK = 1000


class EffectsObserver:
    def __init__(
        self,
        redis_url: str,
        history: History,
        tallied: Iterable[str] = (),
        sample: Callable[..., None] | None = None,
    ) -> None:
        self._redis = aioredis.from_url(redis_url, decode_responses=True, socket_timeout=5)
        self._history = history
        self._tallied = frozenset(tallied)
        self._sample = sample
        self._tally: Counter[tuple[str, int]] = Counter()  # (kind, second) -> effects not yet sampled
        self._last_id = "0-0"
        self.counts: Counter[str] = Counter()
        self.last_read_at = 0.0
        # The drain reads while `run` still does: one reader at a time, or both observe the same entries.
        self._reading = asyncio.Lock()

    async def start_from_now(self) -> None:
        """Only effects produced from now on belong to this run."""
        newest = await self._redis.xrevrange(keys.EFFECTS, count=1)
        self._last_id = newest[0][0] if newest else "0-0"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.read_available(block_ms=500)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                await asyncio.sleep(1)  # Redis is part of the stack; it can be broken too
        await self.read_available()

    async def read_available(self, block_ms: int | None = None) -> int:
        """Read every effect after the last one seen; returns how many."""
        async with self._reading:
            return await self._read_available(block_ms)

    async def _read_available(self, block_ms: int | None) -> int:
        total = 0
        while True:
            reply = await self._redis.xread({keys.EFFECTS: self._last_id}, count=READ_CHUNK, block=block_ms)
            if not reply:
                return total
            entries = reply[0][1]
            for entry_id, fields in entries:
                self._observe(fields)
                self._last_id = entry_id
            total += len(entries)
            self._sample_tally(closed_before=int(max((s for _, s in self._tally), default=0)) - 1)
            block_ms = None  # only the first read waits
            if len(entries) < READ_CHUNK:
                return total

    def _observe(self, fields: dict[str, str]) -> None:
        kind = fields.get("kind", "unknown")
        key = fields.get("message_id") or fields.get("event_id") or ""
        if key.startswith(CANARY_PREFIX):  # the probes' canaries are not part of the load
            kind = f"canary_{kind}"
        at = float(fields.get("at") or 0.0)
        self.counts[kind] += 1
        if kind in self._tallied:
            self._tally[(kind, int(at))] += 1
            return
        meta = {"ticket_id": fields.get("ticket_id"), "event_id": fields.get("event_id")}
        if fields.get("job_id"):
            meta["job_id"] = fields["job_id"]
        self._history.observe(kind, key, at, **meta)

    def _sample_tally(self, closed_before: float) -> None:
        """One `effects` row per kind and second, for the seconds before `closed_before`
        (effects arrive about in order; a straggler makes a second row for its second)."""
        for (kind, second), count in sorted(self._tally.items(), key=lambda item: item[0][1]):
            if second < closed_before:
                if self._sample is not None:
                    self._sample("effects", kind=kind, second=second, count=count)
                del self._tally[(kind, second)]

    async def close(self) -> None:
        self._sample_tally(closed_before=float("inf"))
        await self._redis.aclose()
