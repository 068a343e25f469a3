"""The fan-out: one XREAD loop over the live streams, each update offered to every interested session.

The reader starts from the streams' current tails and then always passes the last ids it saw, so no
entry is skipped between reads, even across Redis reconnects. Each session has its own bounded queue:
a slow client overflows and is closed instead of holding everybody back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common import keys
from services.common.failpoints import FailpointReader, decode
from services.common.live_feed import CHANNELS
from services.live import protocol
from services.live.metrics import LiveMetrics
from services.live.protocol import CloseCode
from services.live.session import Session

log = logging.getLogger("live.fanout")

_STREAM_TO_CHANNEL = {keys.live_stream(c): c for c in CHANNELS}
DROP_UPDATES = "live.drop_updates"


class Fanout:
    def __init__(
        self, client: aioredis.Redis, metrics: LiveMetrics, block_ms: int = 1000, batch: int = 500
    ) -> None:
        self.sessions: set[Session] = set()
        self.ready = asyncio.Event()  # set once the tails are known; handshakes wait for it
        self._client = client
        self._metrics = metrics
        self._block_ms = block_ms
        self._batch = batch
        self._last: dict[str, int] = {}
        self._failpoints = FailpointReader(self._read_failpoints)

    def register(self, session: Session) -> None:
        self.sessions.add(session)

    def unregister(self, session: Session) -> None:
        self.sessions.discard(session)

    async def run(self) -> None:
        await self._retry(self._load_tails)
        self.ready.set()
        log.info("reading live streams from %s", self._last)
        while True:
            try:
                reply = await self._client.xread(
                    {keys.live_stream(c): f"{self._last[c]}-0" for c in CHANNELS},
                    block=self._block_ms,
                    count=self._batch,
                )
                if not reply:
                    await self._check_for_reset()  # idle: a flushed Redis would look exactly like this
                    continue
            except (RedisError, OSError) as exc:
                self._metrics.redis_errors.inc()
                log.warning("live stream read failed (%s); retrying", exc)
                await asyncio.sleep(1)
                await self._retry(self._check_for_reset)
                continue
            for stream, entries in reply:
                await self._deliver(_STREAM_TO_CHANNEL[stream], entries)

    async def _read_failpoints(self) -> dict[str, object]:
        return decode(await self._client.hgetall(keys.FAILPOINTS))

    async def _deliver(self, channel: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        dropping = bool(await self._failpoints.get(DROP_UPDATES))
        for entry_id, fields in entries:
            seq = int(entry_id.split("-")[0])
            if seq != self._last[channel] + 1:
                self._resync(channel, f"sequence jumped from {self._last[channel]} to {seq}")
            self._last[channel] = seq
            self._metrics.updates_read.labels(channel).inc()
            if dropping:  # the updates are lost on the way: clients see the hole in the sequence
                self._metrics.updates_dropped.labels(channel).inc()
                continue
            data = fields.get("data", "null")
            try:
                json.loads(data)
            except ValueError:
                log.warning("dropping %s update %d: data is not JSON", channel, seq)
                data = "null"
            frame = (channel, seq, protocol.update(channel, seq, data))
            for session in list(self.sessions):
                if channel in session.channels:
                    session.offer(frame)

    async def _load_tails(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for channel in CHANNELS:
                pipe.xrevrange(keys.live_stream(channel), count=1)
            replies = await pipe.execute()
        for channel, entries in zip(CHANNELS, replies, strict=True):
            self._last[channel] = int(entries[0][0].split("-")[0]) if entries else 0

    async def _check_for_reset(self) -> None:
        """A sequence counter below what we already read means Redis lost its data."""
        async with self._client.pipeline(transaction=False) as pipe:
            for channel in CHANNELS:
                pipe.get(keys.live_sequence(channel))
            counters = await pipe.execute()
        for channel, counter in zip(CHANNELS, counters, strict=True):
            current = int(counter or 0)
            if current < self._last[channel]:
                self._resync(channel, f"sequence went back from {self._last[channel]} to {current}")
                self._last[channel] = current

    def _resync(self, channel: str, why: str) -> None:
        """Clients of this channel hold state the history cannot continue: make them reconnect, so they
        get a fresh snapshot."""
        self._metrics.stream_gaps.labels(channel).inc()
        log.warning("%s stream: %s; closing its sessions 1012 to resync", channel, why)
        for session in list(self.sessions):
            if channel in session.channels:
                session.close_soon(CloseCode.SERVICE_RESTART, "live history reset, resync")

    async def _retry(self, operation: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while True:
            try:
                await operation()
                return
            except (RedisError, OSError) as exc:
                self._metrics.redis_errors.inc()
                log.warning("redis unavailable for the live fan-out (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
